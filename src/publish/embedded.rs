//! The embedded default broker: librdkafka's in-process mock cluster on loopback. Nothing is durable.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own and takes commands over a
//! channel until [`EmbeddedBroker`] drops. It does not implement the CreateTopics API, so topics
//! are created through the mock's own call instead of the admin client.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// The mock cluster as its own thread sees it.
pub type Cluster = MockCluster<'static, DefaultProducerContext>;
type Call = Box<dyn FnOnce(&Cluster) -> anyhow::Result<()> + Send>;

struct Command {
    call: Call,
    done: mpsc::Sender<anyhow::Result<()>>,
}

/// A running mock cluster. Dropping it stops the cluster.
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster and returns once it listens.
    pub fn start() -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new().name("embedded-kafka".into()).spawn(move || {
            let cluster = match MockCluster::new(1) {
                Ok(cluster) => cluster,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
            // Runs until every sender is gone, i.e. the broker handle dropped.
            for Command { call, done } in inbox {
                let _ = done.send(call(&cluster));
            }
        })?;
        let bootstrap = ready_rx.recv()??;
        Ok(Self { bootstrap, commands: Some(commands), thread: Some(thread) })
    }

    /// The `host:port` list other programs can use as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates `name` with `partitions` partitions (replication is always 1 here).
    pub fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        let name = name.to_string();
        self.with_cluster(move |cluster| {
            cluster.create_topic(&name, partitions, 1).map_err(|e| anyhow::anyhow!("creating topic {name}: {e}"))
        })
    }

    /// Runs `call` on the cluster's thread: faults on cue for tests (broker down and up, request
    /// errors, round-trip delays).
    pub fn with_cluster(&self, call: impl FnOnce(&Cluster) -> anyhow::Result<()> + Send + 'static) -> anyhow::Result<()> {
        let (done, result) = mpsc::channel();
        let cmd = Command { call: Box::new(call), done };
        self.commands
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("embedded broker stopped"))?
            .send(cmd)
            .map_err(|_| anyhow::anyhow!("embedded broker stopped"))?;
        result.recv()?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
