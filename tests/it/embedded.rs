//! The embedded broker (no `kafka.brokers`): it has no CreateTopics API, so a new service's own
//! topics are declared in `kafka.service_topics` and exist, with `kafka.partitions`, once
//! strangler started (docs/consumer-protocol.md, step 6).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use strangler::demo::monolith::Monolith;

use crate::harness::start_proxy;

/// Differs from what the embedded broker gives a topic it creates on first use (4).
const PARTITIONS: usize = 2;

#[tokio::test(flavor = "multi_thread")]
async fn service_topics_exist_on_the_embedded_broker_with_the_configured_partitions() {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let toml = format!(
        r#"
[legacy]
url = "http://{}"
[kafka]
partitions = {PARTITIONS}
service_topics = ["orders.dlq", "orders.replies"]
[[route]]
name = "orders"
match = {{ path = "/webhooks/orders" }}
topic = "webhooks.orders"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
"#,
        monolith.addr()
    );
    let running = start_proxy(&toml, &[("GH", "gh-secret")], None).await;
    assert!(running.embedded);
    let brokers = running.brokers.clone();
    let found = tokio::task::spawn_blocking(move || {
        // A consumer never creates topics by asking for their metadata (allow.auto.create.topics
        // is false for consumers): an undeclared topic comes back unknown.
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        ["orders.dlq", "orders.replies", "never.declared"]
            .map(|t| {
                let md = client.fetch_metadata(Some(t), Duration::from_secs(10)).unwrap();
                let topic = &md.topics()[0];
                (topic.error().is_none()).then(|| topic.partitions().len())
            })
            .to_vec()
    })
    .await
    .unwrap();
    assert_eq!(found, vec![Some(PARTITIONS), Some(PARTITIONS), None], "orders.dlq, orders.replies, never.declared");
    running.shutdown().await;
}
