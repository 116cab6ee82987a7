//! Wires the stages into a running proxy: broker, topics, producers, listeners, the comparator,
//! and shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::compare::comparator::{Comparator, Input, Samples};
use crate::compare::waiters::Waiters;
use crate::config::Validated;
use crate::control::api::{self as admin_api, Access, Api};
use crate::control::audit::Audit;
use crate::control::parity::ClusterParity;
use crate::control::reload::{Fixed, Reloader};
use crate::control::state::{DialState, Dials};
use crate::control::topic::Control;
use crate::ingress::proxy::{Clock, Proxy};
use crate::ingress::{self, ServeOptions};
use crate::legacy::LegacyClient;
use crate::publish::dedupe::Dedupe;
use crate::publish::embedded::EmbeddedBroker;
use crate::publish::spool::Fsync;
use crate::publish::topics::Maker;
use crate::publish::{self, Supervisor};
use crate::route::{RouteTable, Routes};
use crate::telemetry::readiness::Readiness;
use crate::telemetry::Metrics;

mod running;
mod tasks;
use arc_swap::ArcSwap;
use tasks::{after_topics, log_exit, open_spool, sync_spool, wal_topics, wanted_topics};

/// How long `start` waits for the parity topic's last hour before it gives up.
const PARITY_CATCH_UP: Duration = Duration::from_secs(30);

/// What this process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The proxy, with the comparator embedded unless `comparator.enabled = false`.
    Proxy,
    /// Only the comparator (`strangler compare`): no public listener.
    Comparator,
}

/// Knobs that are not configuration: things tests inject.
pub struct Options {
    pub clock: Clock,
    pub role: Role,
    /// The file the configuration came from: SIGHUP and `POST /api/reload` read it again.
    pub config_path: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self { clock: Arc::new(SystemTime::now), role: Role::Proxy, config_path: None }
    }
}

/// How long start-up waits to read the control topic to its end before it gives up.
const CONTROL_CATCH_UP: Duration = Duration::from_secs(30);

/// How long start-up waits for write-ahead mode to send new events at once (offsets recorded,
/// recovered spool replayed).
const WRITE_AHEAD_LIVE: Duration = Duration::from_secs(15);

/// How long start-up waits for the comparator to get its outcomes partitions.
const COMPARATOR_JOIN: Duration = Duration::from_secs(15);

/// A started process. Call [`Running::shutdown`] to stop it cleanly.
pub struct Running {
    /// The public listener; `0.0.0.0:0` in the comparator role, which has none.
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The Kafka bootstrap list in use (the embedded broker's when none was configured).
    pub brokers: String,
    /// True when running on the embedded, non-durable broker.
    pub embedded: bool,
    pub metrics: Metrics,
    pub routes: Routes,
    pub dials: Arc<Dials>,
    pub samples: Arc<Samples>,
    pub control: Arc<Control>,
    pub parity: Arc<ClusterParity>,
    reloader: Option<Arc<Reloader>>,
    /// Publishing's supervisor: flushes the producers at shutdown.
    publishing: Supervisor,
    flush_timeout: Duration,
    stop: watch::Sender<bool>,
    public: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    // Dropped last: the broker must outlive the producers' final flush.
    _broker: Option<Arc<EmbeddedBroker>>,
}

/// Starts everything and returns once the listeners accept.
pub async fn start(cfg: Validated, opts: Options) -> anyhow::Result<Running> {
    let metrics = Metrics::new().context("registering metrics")?;
    let broker = match &cfg.kafka.brokers {
        Some(_) => None,
        None => Some(Arc::new(EmbeddedBroker::start().context("starting the embedded Kafka broker")?)),
    };
    let brokers = match (&cfg.kafka.brokers, &broker) {
        (Some(b), _) => b.clone(),
        (None, Some(embedded)) => embedded.bootstrap_servers().to_string(),
        (None, None) => unreachable!("the embedded broker starts when no brokers are configured"),
    };
    if broker.is_some() {
        tracing::warn!(bootstrap = %brokers, "no kafka.brokers configured: using the embedded in-memory broker; NOTHING IS DURABLE");
    }
    let topics = Maker {
        brokers: brokers.clone(),
        overrides: cfg.kafka.librdkafka.clone(),
        replication: cfg.kafka.replication_factor,
        create: cfg.kafka.create_topics,
        embedded: broker.clone(),
    };
    let fixed = Fixed::of(&cfg);

    let kafka = &cfg.kafka;
    // Only the proxy publishes events; `strangler compare` run with the same file must not open
    // (and fight over) the proxy's spool directory.
    let spool = match (cfg.spool.clone(), opts.role) {
        (Some(settings), Role::Proxy) => Some(Arc::new(open_spool(settings, &metrics).await?)),
        _ => None,
    };
    let dedupe = Arc::new(Dedupe::new(cfg.dedupe.ttl, cfg.dedupe.max_entries));
    let publish::Handles { events, records, supervisor: publishing, health } = publish::build(publish::Settings {
        brokers: brokers.clone(),
        librdkafka: kafka.librdkafka.clone(),
        live_timeout: cfg.routes.iter().map(|r| r.new_path.publish_timeout).max().unwrap_or(Duration::from_secs(5)),
        dead_letter_topic: kafka.dead_letter_topic.clone(),
        spool: spool.clone(),
        metrics: metrics.publish.clone(),
        skew: metrics.skew.clone(),
        dedupe,
        topics: wal_topics(&cfg),
    })
    .context("creating the Kafka producers")?;
    // Kafka unreachable at start-up must not keep the monolith's path down: serve at once, spool
    // (when configured), and create the topics in the background once Kafka answers.
    let reachable = broker.is_some() || publishing.kafka_reachable(Duration::from_secs(2)).await;
    let (topics_ready, topics_up) = watch::channel(reachable);
    let wanted = wanted_topics(&cfg);
    if reachable {
        topics.ensure(&wanted).await.with_context(|| format!("creating topics on {brokers}"))?;
    } else {
        publishing.start_unreachable();
    }

    let dials = Arc::new(Dials::default());
    for r in &cfg.routes {
        dials.init(&r.name, DialState::initial(r.initial.0, r.initial.1));
    }
    let audit = Arc::new(Audit::new(&brokers, &kafka.librdkafka, &kafka.audit_topic).context("creating the audit producer")?);
    let control = Arc::new(
        Control::new(&brokers, &kafka.librdkafka, &kafka.control_topic, dials.clone(), audit.clone(), metrics.control.clone())
            .context("creating the control producer")?,
    );
    let routes: Routes = Arc::new(ArcSwap::from_pointee(RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())));
    metrics.init_routes(&routes.load());
    metrics.tls.client_cert("legacy_client", cfg.legacy.tls.cert.as_deref());
    metrics.tls.client_cert("kafka_client", kafka.librdkafka.get("ssl.certificate.location").map(String::as_str));
    events.prepare_routes(routes.load().iter().map(|r| r.name.as_str()));
    let samples = Arc::new(Samples::default());
    let (stop, stopped) = watch::channel(false);
    let serve_opts = ServeOptions::new(&cfg.server);
    let mut background = Vec::new();
    background.push(tokio::spawn(log_exit(
        "control topic reader",
        control.clone().run(brokers.clone(), kafka.librdkafka.clone(), stopped.clone()),
    )));
    background.push(tokio::spawn(log_exit(
        "audit topic reader",
        audit.clone().run(brokers.clone(), kafka.librdkafka.clone(), stopped.clone()),
    )));
    background.push(tokio::spawn(log_exit("publisher supervisor", publishing.clone().supervise(stopped.clone()))));
    if !reachable {
        let failures = metrics.publish.topic_create_failures.clone();
        let run = topics.clone().ensure_in_background(wanted, publishing.clone(), failures, topics_ready, stopped.clone());
        background.push(tokio::spawn(log_exit("topic creation", run)));
    }
    if let Some(spool) = spool.filter(|s| matches!(s.settings().fsync, Fsync::Every(_))) {
        background.push(tokio::spawn(sync_spool(spool, stopped.clone())));
    }

    let mut comparing = None;
    if cfg.comparator.enabled || opts.role == Role::Comparator {
        let comparator = Arc::new(Comparator {
            routes: routes.clone(),
            metrics: metrics.compare.clone(),
            records: records.clone(),
            parity_topic: kafka.parity_topic.clone(),
            samples: samples.clone(),
            settings: crate::compare::core::Settings {
                limits: cfg.comparator.limits,
                keep_body_bytes: cfg.comparator.keep_body_bytes,
                parity_window: cfg.comparator.parity_window,
                remember: crate::compare::comparator::REMEMBER,
            },
            assigned: watch::channel(false).0,
        });
        comparing = Some(comparator.clone());
        let input = Input {
            brokers: brokers.clone(),
            overrides: kafka.librdkafka.clone(),
            group_id: cfg.comparator.group_id.clone(),
            topic: kafka.outcomes_topic.clone(),
        };
        let run = after_topics(topics_up.clone(), stopped.clone(), comparator.run(input, stopped.clone()));
        background.push(tokio::spawn(log_exit("comparator", run)));
    }

    // Consumer lag of the `[[lag.group]]`s and the comparator's group; no task when none.
    let compares = cfg.comparator.enabled || opts.role == Role::Comparator;
    let comparator_group = compares.then_some((cfg.comparator.group_id.as_str(), kafka.outcomes_topic.as_str()));
    let lag = Arc::new(crate::control::lag::Monitor::new(&cfg.lag, comparator_group, metrics.lag.clone()));
    if lag.watches_anything() {
        let run = lag.clone().run(crate::publish::producer::client_config(&brokers, &kafka.librdkafka), stopped.clone());
        background.push(tokio::spawn(log_exit("consumer lag monitor", run)));
    }

    // Every replica reads the whole parity topic, whether or not it compares.
    // Keeps as many mismatch samples as the most demanding route shows (`compare.samples`).
    let keep = routes.load().iter().map(|r| r.compare.samples).max().unwrap_or(0).max(50);
    let parity = Arc::new(ClusterParity::new(keep));
    let run = parity.clone().run(brokers.clone(), kafka.librdkafka.clone(), kafka.parity_topic.clone(), stopped.clone());
    background.push(tokio::spawn(log_exit("cluster parity", run)));
    // A replica serves only the dial the cluster agreed on, and has the last hour's figures from
    // its first request: read the control topic to its end and the parity topic's last hour
    // before the public listener accepts. With Kafka down it starts anyway (the monolith's path
    // must not need Kafka), on the file's initial states, and reports not ready until it has read
    // the control topic.
    if !reachable {
        tracing::error!(topic = %kafka.control_topic, "Kafka unreachable at start-up: serving at once on the file's initial route states until the control topic can be read; topics are created in the background");
    } else {
        if !control.wait_caught_up(CONTROL_CATCH_UP).await {
            let _ = stop.send(true);
            anyhow::bail!(
                "could not read the control topic {} to its end within {CONTROL_CATCH_UP:?} (does it exist? strangler creates it \
                 compacted with one partition when kafka.create_topics is true)",
                kafka.control_topic
            );
        }
        if !publishing.wait_live(WRITE_AHEAD_LIVE).await {
            tracing::warn!("write-ahead: still replaying the spool; new shadow events queue behind it until done");
        }
        if !parity.wait_caught_up(PARITY_CATCH_UP).await {
            let _ = stop.send(true);
            anyhow::bail!("the parity topic {} was not read to its end within {PARITY_CATCH_UP:?}", kafka.parity_topic);
        }
        // Joining the comparator group rebalances it; let that settle before traffic, so no
        // comparator loses the events it holds. Bounded: with more replicas than partitions a
        // comparator gets none.
        if let Some(c) = &comparing {
            let mut assigned = c.assigned.subscribe();
            if tokio::time::timeout(COMPARATOR_JOIN, assigned.wait_for(|a| *a)).await.is_err() {
                tracing::info!("the comparator has no outcomes partition yet (more replicas than partitions?)");
            }
        }
    }

    let (public_addr, public) = if opts.role == Role::Proxy {
        let waiters = Waiters::default();
        if routes.load().iter().any(|r| r.new_path.await_outcome.is_some()) {
            let run =
                waiters.clone().run(brokers.clone(), kafka.librdkafka.clone(), kafka.outcomes_topic.clone(), stopped.clone());
            background.push(tokio::spawn(log_exit("outcome waiters", after_topics(topics_up.clone(), stopped.clone(), run))));
        }
        let listener =
            TcpListener::bind(cfg.server.listen).await.with_context(|| format!("binding server.listen {}", cfg.server.listen))?;
        let addr = listener.local_addr()?;
        let proxy = Arc::new(Proxy {
            routes: routes.clone(),
            dials: dials.clone(),
            default_upstream: cfg.legacy.url.clone(),
            legacy: LegacyClient::new(&cfg.legacy),
            events,
            records,
            metrics: metrics.clone(),
            clock: opts.clock,
            max_body_bytes: cfg.server.max_body_bytes,
            outcomes_topic: kafka.outcomes_topic.clone(),
            waiters,
            body_budget: ingress::body_budget::BodyBudget::new(
                cfg.server.max_buffered_body_bytes,
                &metrics.registry,
                metrics.ingress.budget_exhausted.clone(),
            ),
        });
        let stack = ingress::stack::build(proxy, &cfg.server);
        let tls = cfg.server.tls.as_ref().map(|t| ingress::tls::start("server", t, &metrics.tls, stopped.clone())).transpose()?;
        (addr, Some(tokio::spawn(ingress::serve(listener, stack, serve_opts, stopped.clone(), tls))))
    } else {
        (SocketAddr::from(([0, 0, 0, 0], 0)), None)
    };

    let admin_listener =
        TcpListener::bind(cfg.admin.listen).await.with_context(|| format!("binding admin.listen {}", cfg.admin.listen))?;
    let admin_addr = admin_listener.local_addr()?;
    background.push(tokio::spawn(crate::control::autopilot::run(
        routes.clone(),
        control.clone(),
        parity.clone(),
        stopped.clone(),
    )));
    let access = Arc::new(ArcSwap::from_pointee(Access {
        tokens: cfg.admin.tokens.clone(),
        read_requires_token: cfg.admin.read_requires_token,
    }));
    if !cfg.admin.listen.ip().is_loopback() && !cfg.admin.read_requires_token {
        tracing::warn!(listen = %cfg.admin.listen, "the admin API is reachable off this host and reads need no token; set admin.read_requires_token");
    }
    let reloader = opts.config_path.map(|path| {
        Arc::new(Reloader {
            path,
            routes: routes.clone(),
            control: control.clone(),
            access: access.clone(),
            metrics: metrics.clone(),
            topics,
            partitions: kafka.partitions,
            fixed,
            lock: tokio::sync::Mutex::new(()),
        })
    });
    let api = Arc::new(Api {
        metrics: metrics.clone(),
        publishing: health,
        embedded_bootstrap: broker.as_ref().map(|b| b.bootstrap_servers().to_string()),
        routes: routes.clone(),
        control: control.clone(),
        parity: parity.clone(),
        access,
        reloader: reloader.clone(),
        readiness: Readiness {
            public: (opts.role == Role::Proxy).then_some(public_addr),
            spool: publishing.spool().cloned(),
            requires_kafka: cfg.admin.ready_requires_kafka,
            legacy: cfg.legacy.url.clone(),
        },
        lag,
    });
    let admin_tls = cfg.admin.tls.as_ref().map(|t| ingress::tls::start("admin", t, &metrics.tls, stopped.clone())).transpose()?;
    background.push(tokio::spawn(admin_api::serve(admin_listener, api, serve_opts, stopped, admin_tls)));
    tracing::info!(%public_addr, %admin_addr, %brokers, role = ?opts.role, "strangler started");

    Ok(Running {
        public_addr,
        admin_addr,
        brokers,
        embedded: broker.is_some(),
        metrics,
        routes,
        dials,
        samples,
        control,
        parity,
        reloader,
        publishing,
        flush_timeout: kafka.flush_timeout,
        stop,
        public,
        background,
        _broker: broker,
    })
}
