//! The embedded default broker: librdkafka's in-process mock cluster on loopback. Nothing is durable.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own until [`EmbeddedBroker`] drops.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

/// A running mock cluster. Dropping it stops the cluster.
pub struct EmbeddedBroker {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster and returns once it listens.
    pub fn start() -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("embedded-kafka".into()).spawn(move || {
            match MockCluster::new(1) {
                Ok(cluster) => {
                    let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                    // Blocks until the sender is dropped or a stop is sent.
                    let _ = stop_rx.recv();
                    drop(cluster);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        let bootstrap = ready_rx.recv()??;
        Ok(Self { bootstrap, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// The `host:port` list other programs can use as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
