//! `scripts/bench`'s two helpers: the fast upstream (the real sample monolith, not recording) and
//! the loss check's counter (records and distinct `ce_id`s on a topic, read to its end).
//!
//! ```text
//! bench_kit upstream --listen 127.0.0.1:3000
//! bench_kit count --brokers 127.0.0.1:9092 --topic webhooks.bench
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use strangler::demo::monolith::{Behaviour, Monolith};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sample monolith (answers `200 {"ok":true,"seq":N}`, keeps nothing) until killed.
    Upstream {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Read `topic` from the beginning until it goes quiet and print one JSON line:
    /// `{"records":N,"distinct_ids":N,"without_id":N,"partitions":N,"complete":BOOL}`.
    Count {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        /// Done when no record has come for this many seconds.
        #[arg(long, default_value_t = 3)]
        idle_secs: u64,
        /// Give up reading after this many seconds (the line says `"complete":false`).
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// Also write every record's `ce_id` and partition/offset to this file, one a line.
        #[arg(long)]
        dump: Option<std::path::PathBuf>,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().command {
        Command::Upstream { listen } => upstream(listen),
        Command::Count { brokers, topic, idle_secs, timeout_secs, dump } => {
            let idle = Duration::from_secs(idle_secs);
            count(&brokers, &topic, idle, Duration::from_secs(timeout_secs), dump.as_deref())
        }
    }
}

/// One runtime thread: the upstream shares the load generator's core and must not be the limit
/// through scheduling noise of its own.
fn upstream(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let handle = Monolith::start_with(listen, Behaviour { decide: false, record: false }).await?;
        println!("listening {}", handle.url());
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn count(
    brokers: &str,
    topic: &str,
    idle: Duration,
    timeout: Duration,
    dump: Option<&Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut dump = dump.map(File::create).transpose()?.map(BufWriter::new);
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-count-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    // Read from the beginning until nothing comes for `idle`: the proxy has stopped (flushed) before
    // the script calls this. Not up to the high watermarks: Tansu 0.6's lag behind its records.
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let (mut records, mut without_id) = (0u64, 0u64);
    let mut ids = HashSet::new();
    let mut last = Instant::now();
    // Before the first record, allow for the consumer's start (metadata, first fetch) too.
    let quiet = |records: u64| if records == 0 { idle.max(Duration::from_secs(10)) } else { idle };
    while last.elapsed() < quiet(records) && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let message = message?;
        last = Instant::now();
        records += 1;
        let id = message.headers().and_then(|h| h.iter().find(|h| h.key == "ce_id").and_then(|h| h.value.map(<[u8]>::to_vec)));
        if let Some(out) = dump.as_mut() {
            let shown = id.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            writeln!(out, "{shown} {}/{}", message.partition(), message.offset())?;
        }
        match id {
            Some(id) => {
                ids.insert(id);
            }
            None => without_id += 1,
        }
    }
    if let Some(mut out) = dump {
        out.flush()?;
    }
    println!(
        "{{\"records\":{records},\"distinct_ids\":{},\"without_id\":{without_id},\"partitions\":{},\"complete\":{}}}",
        ids.len(),
        partitions.len(),
        last.elapsed() >= quiet(records)
    );
    Ok(())
}
