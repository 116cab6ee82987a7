//! `strangler demo`: the whole migration scene in one process, on the embedded broker.
//!
//! Starts, in order: the embedded broker, the sample monolith, the sample new service (consumer
//! kit; disagrees on ~2 % of events, in `risk`), the proxy in shadow mode (or split with
//! `--share`), and a generator of signed webhooks. Parity settles near 98 %.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::monolith::{Behaviour, Monolith, MonolithHandle};
use super::service::OrderService;
use crate::app::{self, Options, Running};
use crate::consumer::{self, ConsumerConfig};
use crate::publish::embedded::EmbeddedBroker;

const SECRET: &str = "whsec_demo_secret";
const TOPIC: &str = "webhooks.orders";

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Start in split mode with this percent of customers on the new path.
    pub share: Option<f64>,
    /// Webhooks per second.
    pub rate: u32,
    /// Basis points of events the new service disagrees on.
    pub disagree_bp: u32,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// The admin token; a fresh one per run when `None`.
    pub token: Option<String>,
}

/// A running demo.
pub struct Demo {
    pub proxy: Running,
    pub monolith: MonolithHandle,
    pub bootstrap: String,
    /// The admin token of this run (`[[admin.token]] name = "demo"`).
    pub token: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _broker: EmbeddedBroker,
}

/// Starts the scene.
pub async fn start(opts: DemoOptions) -> anyhow::Result<Demo> {
    let broker = EmbeddedBroker::start().context("starting the embedded broker")?;
    let bootstrap = broker.bootstrap_servers().to_string();
    for topic in [TOPIC, "strangler.outcomes", "strangler.parity"] {
        broker.create_topic(topic, 3)?;
    }
    for topic in ["strangler.control", "strangler.audit"] {
        broker.create_topic(topic, 1)?;
    }
    let monolith = Monolith::start_with("127.0.0.1:0".parse()?, Behaviour { decide: true, record: false }).await?;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let service = ConsumerConfig::new(bootstrap.clone(), "demo-order-service", vec![TOPIC.to_string()], "demo-order-service");
    let handler = OrderService { disagree_bp: opts.disagree_bp };
    let service_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = consumer::run(service, handler, service_stop).await {
            tracing::error!(error = %e, "demo service stopped");
        }
    }));

    let mode = match opts.share {
        Some(share) => format!("mode = \"split\"\nshare = {share}"),
        None => "mode = \"shadow\"".to_string(),
    };
    let toml = format!(
        r#"
[server]
listen = "{listen}"
[admin]
listen = "{admin}"
[[admin.token]]
name = "demo"
env = "DEMO_TOKEN"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{bootstrap}"
create_topics = false
[[route]]
name = "orders"
match = {{ path = "/webhooks/orders" }}
topic = "{TOPIC}"
signature = {{ scheme = "stripe", secrets_env = ["DEMO_SECRET"] }}
event = {{ key_pointer = "/customer", type_prefix = "com.example." }}
{mode}
compare = {{ window_ms = 10000, samples = 20 }}
"#,
        listen = opts.listen,
        admin = opts.admin,
        legacy = monolith.url(),
    );
    // The operator's own (`STRANGLER_ADMIN_TOKEN`, so the CLI in the same shell just works), or
    // one for this run only; printed in the banner either way, so the dial can be tried at once.
    let token = opts.token.clone().unwrap_or_else(|| format!("demo-{}", ulid::Ulid::new()));
    let env = |var: &str| Some(if var == "DEMO_TOKEN" { token.clone() } else { SECRET.to_string() });
    let cfg = crate::config::load_str(&toml, "demo.toml", &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let proxy = app::start(cfg, Options::default()).await?;

    let url = format!("http://{}/webhooks/orders", proxy.public_addr);
    tasks.push(tokio::spawn(super::generator::run(url, SECRET.to_string(), opts.rate, stopped)));
    Ok(Demo { proxy, monolith, bootstrap, token, stop, tasks, _broker: broker })
}

impl Demo {
    /// Where to look, one line each.
    pub fn banner(&self) -> String {
        let admin = self.proxy.admin_addr;
        [
            format!("strangler demo: proxy on http://{}/webhooks/orders", self.proxy.public_addr),
            format!("  console:           http://{admin}/ (paste the token below into it to dial)"),
            format!("  parity and mode:   http://{admin}/api/routes/orders"),
            format!("  mismatch samples:  http://{admin}/api/routes/orders/mismatches"),
            format!("  metrics:           http://{admin}/metrics"),
            format!(
                "  dial it live:      STRANGLER_ADMIN=http://{admin} STRANGLER_ADMIN_TOKEN={} strangler dial orders 10 --reason try",
                self.token
            ),
            format!("  kafka bootstrap:   {} (embedded, in-memory: NOTHING IS DURABLE)", self.bootstrap),
            format!("  sample monolith:   {}", self.monolith.url()),
            "Parity reads about 98 % after ~30 s; the new service disagrees on ~2 % of orders, in `risk`. Ctrl-C stops."
                .to_string(),
        ]
        .join("\n")
    }

    /// Stops the generator first, then the proxy (draining), the service and the monolith.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.proxy.shutdown().await;
        for t in self.tasks {
            let _ = t.await;
        }
        self.monolith.shutdown();
    }
}
