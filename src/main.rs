//! The `strangler` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strangler::telemetry::logging::{self, LogFormat};

#[derive(Parser)]
#[command(name = "strangler", version, about = "Reverse proxy for strangler-fig migrations off a legacy monolith")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file (secrets' environment variables included) and exit.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match strangler::config::load(&file) {
            Ok(cfg) => {
                println!("{}: ok ({} route(s))", file.display(), cfg.routes.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            logging::init(cli.log_format);
            let cfg = match strangler::config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("strangler: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("strangler: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(cfg: strangler::config::Validated) -> anyhow::Result<()> {
    let running = strangler::app::start(cfg, strangler::app::Options::default()).await?;
    // Printed on stdout, one fact per line, so people and scripts can find the addresses.
    println!("strangler listening on {}", running.public_addr);
    println!("strangler admin on http://{}/metrics", running.admin_addr);
    if running.embedded {
        println!("strangler kafka bootstrap {} (embedded, in-memory: NOTHING IS DURABLE)", running.brokers);
    } else {
        println!("strangler kafka bootstrap {}", running.brokers);
    }
    wait_for_signal().await?;
    tracing::info!("shutdown signal received; draining");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
