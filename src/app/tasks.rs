//! Start-up helpers: the topics to create, opening and syncing the spool, and wrappers for the
//! background tasks (start once the topics exist, log how they ended).

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::config::Validated;
use crate::contract::OnInvalid;
use crate::publish::spool::{Fsync, Spool};
use crate::publish::topics::TopicSpec;
use crate::telemetry::Metrics;

/// The routes' topics, the outcomes, parity and dead-letter topics, and the control topic
/// (compacted, one partition so every route's changes have one order) and the audit topic.
pub(super) fn wanted_topics(cfg: &Validated) -> Vec<TopicSpec> {
    let k = &cfg.kafka;
    let mut plain: BTreeSet<&str> = cfg.routes.iter().map(|r| r.topic.as_str()).collect();
    plain.extend([k.outcomes_topic.as_str(), k.parity_topic.as_str(), k.dead_letter_topic.as_str()]);
    plain.extend(k.service_topics.iter().map(String::as_str));
    let mut wanted: Vec<TopicSpec> = plain.into_iter().map(|t| TopicSpec::plain(t, k.partitions)).collect();
    wanted.push(TopicSpec { name: k.control_topic.clone(), partitions: 1, config: vec![("cleanup.policy", "compact")] });
    wanted.push(TopicSpec::plain(&k.audit_topic, 1));
    wanted
}

/// The topics write-ahead mode records the end offsets of before sending anything: the routes'
/// and, when a contract dead-letters, the dead-letter topic (its records take the same path).
pub(super) fn wal_topics(cfg: &Validated) -> Vec<String> {
    let mut topics: BTreeSet<String> = cfg.routes.iter().map(|r| r.topic.clone()).collect();
    let dead_letters = cfg.routes.iter().filter_map(|r| r.contract.as_deref()).any(|c| c.on_invalid == OnInvalid::DeadLetter);
    if dead_letters {
        topics.insert(cfg.kafka.dead_letter_topic.clone());
    }
    topics.into_iter().collect()
}

/// Opens the spool (repairing a torn tail) off the async threads.
pub(super) async fn open_spool(settings: crate::publish::spool::Settings, metrics: &Metrics) -> anyhow::Result<Spool> {
    let dir = settings.dir.display().to_string();
    let (spool, opened) = tokio::task::spawn_blocking(move || Spool::open(settings))
        .await?
        .with_context(|| format!("opening the spool in {dir}"))?;
    metrics.publish.torn_tails.inc_by(opened.torn_tails);
    tracing::info!(dir, records = opened.records, bytes = opened.bytes, torn_tails = opened.torn_tails, "spool opened");
    Ok(spool)
}

/// Fsyncs the spool every `spool.fsync` interval while anything was written.
pub(super) async fn sync_spool(spool: Arc<Spool>, mut stop: watch::Receiver<bool>) {
    let Fsync::Every(every) = spool.settings().fsync else { return };
    let mut tick = tokio::time::interval(every);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        let s = spool.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.sync()).await {
            tracing::error!(error = %e, "spool fsync failed");
        }
    }
}

/// Runs `task` once the topics exist (at once unless Kafka was unreachable at start-up).
pub(super) async fn after_topics(
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    task: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        r = ready.wait_for(|r| *r) => if r.is_err() { return Ok(()) },
        _ = stop.wait_for(|s| *s) => return Ok(()),
    }
    task.await
}

pub(super) async fn log_exit(what: &'static str, task: impl std::future::Future<Output = anyhow::Result<()>>) {
    if let Err(e) = task.await {
        tracing::error!(task = what, error = %e, "background task stopped");
    }
}
