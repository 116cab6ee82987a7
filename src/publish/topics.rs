//! Creates the topics strangler uses. Brokers with auto-creation off (and Tansu) need this; a
//! reload that adds a route creates that route's topic the same way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::embedded::EmbeddedBroker;
use super::producer::client_config;

/// One topic to create: its name, partitions and topic-level settings.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub config: Vec<(&'static str, &'static str)>,
}

impl TopicSpec {
    /// A topic with the default number of partitions and no special settings.
    pub fn plain(name: &str, partitions: i32) -> Self {
        Self { name: name.to_string(), partitions, config: Vec::new() }
    }
}

/// Where and how topics are created.
#[derive(Clone)]
pub struct Maker {
    pub brokers: String,
    pub overrides: BTreeMap<String, String>,
    pub replication: i32,
    /// `kafka.create_topics`; the embedded broker always creates.
    pub create: bool,
    pub embedded: Option<Arc<EmbeddedBroker>>,
}

impl Maker {
    /// Creates each topic that does not exist yet; one that exists is left as it is.
    pub async fn ensure(&self, topics: &[TopicSpec]) -> anyhow::Result<()> {
        if let Some(embedded) = &self.embedded {
            for t in topics {
                embedded.create_topic(&t.name, t.partitions)?;
            }
            return Ok(());
        }
        if !self.create || topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = client_config(&self.brokers, &self.overrides).create()?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                t.config
                    .iter()
                    .fold(NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(self.replication)), |n, (k, v)| {
                        n.set(k, v)
                    })
            })
            .collect();
        let opts =
            AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(15)));
        for result in admin.create_topics(new.iter(), &opts).await? {
            match result {
                Ok(topic) => tracing::info!(topic, replication = self.replication, "created topic"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic, "topic exists"),
                Err((topic, code)) => anyhow::bail!("creating topic {topic} on {} failed: {code}", self.brokers),
            }
        }
        Ok(())
    }
}

/// First and longest wait between two attempts of [`Maker::ensure_in_background`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

impl Maker {
    /// Start-up found Kafka unreachable: creates `topics` once it answers, retrying with
    /// exponential backoff (1 s doubling to 30 s), each failure logged and counted in
    /// `strangler_topic_create_failures_total`. Then lets `supervisor` publish and replay, and
    /// reports it through `ready`.
    pub async fn ensure_in_background(
        self,
        topics: Vec<TopicSpec>,
        supervisor: super::Supervisor,
        failures: prometheus::IntCounter,
        ready: tokio::sync::watch::Sender<bool>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut wait = RETRY_FIRST;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = if supervisor.kafka_reachable(Duration::from_secs(2)).await {
                self.ensure(&topics).await
            } else {
                Err(anyhow::anyhow!("no broker answered a metadata request"))
            };
            match result {
                Ok(()) => {
                    tracing::info!(attempt, brokers = %self.brokers, "Kafka answered: topics ready; publishing and replaying the spool");
                    supervisor.set_topics_ready();
                    ready.send_replace(true);
                    return Ok(());
                }
                Err(e) => {
                    failures.inc();
                    tracing::warn!(attempt, retry_in = ?wait, error = %e, brokers = %self.brokers, "creating topics: Kafka not ready yet");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}
