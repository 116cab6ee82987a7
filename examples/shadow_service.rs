//! A new service on the consumer kit: accepts orders under 100 and ships the accepted ones.
//!
//! For shadow events it only reports what it would have decided (the monolith still ships);
//! for live events it ships. Run it against strangler's broker:
//!
//! ```text
//! cargo run --example shadow_service -- --brokers localhost:9092 --topic webhooks.shop --group orders-service
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use serde::Deserialize;
use serde_json::json;
use strangler::consumer::{self, ConsumerConfig, Decision, Effects, Event, Handler, HandlerError};
use strangler::telemetry::logging::{self, LogFormat};

#[derive(Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "localhost:9092")]
    brokers: String,
    /// The route's events topic.
    #[arg(long)]
    topic: String,
    /// Consumer group, also the service name in outcomes.
    #[arg(long, default_value = "orders-service")]
    group: String,
}

/// The part of the webhook body this service reads.
#[derive(Deserialize)]
struct Order {
    amount: f64,
}

struct Orders {
    shipped: AtomicU64,
}

impl Handler for Orders {
    async fn handle(&self, event: &Event, effects: &Effects) -> Result<Decision, HandlerError> {
        // A body that is not an order is a permanent error: the event is dead-lettered.
        let order: Order = event.json()?;
        if order.amount >= 100.0 {
            return Decision::json(422, &json!({ "accepted": false, "reason": "amount over limit" }));
        }
        // The one side effect goes through `effects`: it runs for live events only.
        effects
            .perform("ship order", || async {
                let n = self.shipped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(order = %event.key, shipped = n, "shipping");
            })
            .await;
        Decision::json(200, &json!({ "accepted": true }))
    }
}

#[tokio::main]
async fn main() -> Result<(), consumer::ConsumerError> {
    logging::init(LogFormat::Text);
    let args = Args::parse();
    let cfg = ConsumerConfig::new(args.brokers, args.group.clone(), vec![args.topic], args.group);

    // Ctrl-C: finish the current event, commit, print what was done.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let stats = consumer::run(cfg, Orders { shipped: AtomicU64::new(0) }, shutdown).await?;
    println!("{stats:?}");
    Ok(())
}
