//! Wires the stages into a running proxy: broker, topics, producer, listeners, and shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Validated;
use crate::control::admin::{self, Admin};
use crate::ingress::proxy::{Clock, Proxy};
use crate::ingress::{self, ServeOptions};
use crate::legacy::LegacyClient;
use crate::publish::embedded::EmbeddedBroker;
use crate::publish::{producer, topics, LogAndDrop, Publisher};
use crate::route::RouteTable;
use crate::telemetry::Metrics;

/// Knobs that are not configuration: things tests inject.
pub struct Options {
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Self { clock: Arc::new(SystemTime::now) }
    }
}

/// A started proxy. Call [`Running::shutdown`] to stop it cleanly.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The Kafka bootstrap list in use (the embedded broker's when none was configured).
    pub brokers: String,
    /// True when running on the embedded, non-durable broker.
    pub embedded: bool,
    pub metrics: Metrics,
    publisher: Publisher,
    flush_timeout: Duration,
    stop: watch::Sender<bool>,
    public: JoinHandle<()>,
    admin: JoinHandle<()>,
    // Dropped last: the broker must outlive the producer's final flush.
    _broker: Option<EmbeddedBroker>,
}

/// Starts everything and returns once both listeners accept.
pub async fn start(cfg: Validated, opts: Options) -> anyhow::Result<Running> {
    let metrics = Metrics::new().context("registering metrics")?;
    let broker = match &cfg.kafka.brokers {
        Some(_) => None,
        None => Some(EmbeddedBroker::start().context("starting the embedded Kafka broker")?),
    };
    let brokers = match (&cfg.kafka.brokers, &broker) {
        (Some(b), _) => b.clone(),
        (None, Some(embedded)) => embedded.bootstrap_servers().to_string(),
        (None, None) => unreachable!("the embedded broker starts when no brokers are configured"),
    };
    if broker.is_some() {
        tracing::warn!(bootstrap = %brokers, "no kafka.brokers configured: using the embedded in-memory broker; NOTHING IS DURABLE");
    }

    let wanted: BTreeSet<String> = cfg.routes.iter().map(|r| r.topic.clone()).collect();
    match (&broker, cfg.kafka.create_topics) {
        (Some(embedded), _) => {
            for topic in &wanted {
                embedded.create_topic(topic, cfg.kafka.partitions)?;
            }
        }
        (None, true) => {
            let wanted: Vec<String> = wanted.into_iter().collect();
            topics::ensure(&brokers, &cfg.kafka.librdkafka, &wanted, cfg.kafka.partitions, cfg.kafka.replication_factor)
                .await
                .with_context(|| format!("creating topics on {brokers}"))?;
        }
        (None, false) => {}
    }
    let producer = producer::create(&brokers, &cfg.kafka.librdkafka).context("creating the Kafka producer")?;
    let publisher = Publisher::new(producer, metrics.publish.clone(), Arc::new(LogAndDrop));

    let public =
        TcpListener::bind(cfg.server.listen).await.with_context(|| format!("binding server.listen {}", cfg.server.listen))?;
    let admin_listener =
        TcpListener::bind(cfg.admin.listen).await.with_context(|| format!("binding admin.listen {}", cfg.admin.listen))?;
    let public_addr = public.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let proxy = Arc::new(Proxy {
        routes: RouteTable::new(cfg.routes),
        default_upstream: cfg.legacy.url.clone(),
        legacy: LegacyClient::new(&cfg.legacy),
        publisher: publisher.clone(),
        metrics: metrics.clone(),
        clock: opts.clock,
        max_body_bytes: cfg.server.max_body_bytes,
    });
    let stack = ingress::stack::build(proxy, cfg.server.request_timeout, cfg.server.max_body_bytes);
    let serve_opts = ServeOptions { header_read_timeout: cfg.server.header_read_timeout, grace: cfg.server.shutdown_grace };
    let (stop, stopped) = watch::channel(false);
    let public = tokio::spawn(ingress::serve(public, stack, serve_opts, stopped.clone()));
    let admin_state = Arc::new(Admin {
        metrics: metrics.clone(),
        publisher: publisher.clone(),
        embedded_bootstrap: broker.as_ref().map(|b| b.bootstrap_servers().to_string()),
    });
    let admin = tokio::spawn(admin::serve(admin_listener, admin_state, serve_opts, stopped));
    tracing::info!(%public_addr, %admin_addr, %brokers, "strangler started");

    Ok(Running {
        public_addr,
        admin_addr,
        brokers,
        embedded: broker.is_some(),
        metrics,
        publisher,
        flush_timeout: cfg.kafka.flush_timeout,
        stop,
        public,
        admin,
        _broker: broker,
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (bounded by `server.shutdown_grace_ms`),
    /// then flushes the producer (bounded by `kafka.flush_timeout_ms`).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.public.await;
        let left = self.publisher.flush(self.flush_timeout).await;
        if left > 0 {
            tracing::error!(unflushed = left, "events still queued for Kafka at exit");
        }
        let _ = self.admin.await;
        tracing::info!("strangler stopped");
    }
}
