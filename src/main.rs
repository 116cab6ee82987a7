//! The `strangler` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use strangler::app::Role;
use strangler::control::client::{parse_percent, Admin, Call, ClientError};
use strangler::demo::scene::DemoOptions;
use strangler::telemetry::logging::{self, LogFormat};

/// jemalloc: fewer instructions per allocation than glibc's malloc on the request path, and
/// freed pages go back to the system from a background thread (see `malloc_conf`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start: a background thread purges freed pages, dirty ones
/// after 1 s, so memory freed after a burst (held bodies, a backlog) is returned, not kept.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// `strangler --version`: the crate version and the git commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("STRANGLER_GIT_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "strangler", version = VERSION, about = "Reverse proxy for strangler-fig migrations off a legacy monolith")]
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
    /// Run only the comparator (no public listener): joins outcomes and records parity.
    Compare {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the whole scene in one process: embedded broker, sample monolith, sample new
    /// service, the proxy and a webhook generator. Shows parity within a minute.
    Demo {
        /// Start in split mode with this percent of customers owned by the new service.
        #[arg(long)]
        share: Option<f64>,
        /// Webhooks per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Public listener [env: STRANGLER_DEMO_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Admin listener, host:port [env: STRANGLER_ADMIN, the CLI's http://host:port]
        /// [default: 127.0.0.1:9090]. Its admin token is STRANGLER_ADMIN_TOKEN's value when set.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
    /// Run only the demo's sample monolith (what the compose stack puts behind strangler).
    SampleMonolith {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
    },
    /// Validate a configuration file (secrets' environment variables included) and exit.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Every route's mode, share, parity, guard and rollout, from a running proxy's admin API.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Put a route in split mode with PERCENT of entities owned by the new service.
    #[command(allow_negative_numbers = true)]
    Dial {
        /// The route's name in the configuration.
        route: String,
        /// A number from 0 to 100, at most two decimals.
        #[arg(value_parser = parse_percent)]
        percent: f64,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Set a route's mode, keeping its share.
    Mode {
        /// The route's name in the configuration.
        route: String,
        /// The new mode; the share is kept (it applies in split).
        #[arg(value_parser = ["passthrough", "shadow", "split", "cutover"])]
        mode: String,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Back to shadow at 0 %: the monolith owns everything again; a rollout is paused.
    Rollback {
        /// The route's name in the configuration.
        route: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Act on a route's configured rollout.
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// The latest changes, newest first, of one route or all.
    Audit {
        /// Only this route's changes.
        route: Option<String>,
        /// At most this many entries (the server's default is 100).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Reload the running proxy's configuration file (like SIGHUP).
    Reload {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Event contracts (JSON Schemas).
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
}

#[derive(Subcommand)]
enum ContractAction {
    /// Exit 0 when NEW is compatible with OLD in MODE, 1 listing each breaking change, 2 on bad input.
    Check {
        /// The schema in force (JSON).
        old: PathBuf,
        /// The proposed schema (JSON).
        new: PathBuf,
        /// backward: NEW reads what OLD wrote; forward: OLD reads what NEW writes; full: both.
        #[arg(long, default_value = "backward", value_parser = ["backward", "forward", "full"])]
        mode: String,
    },
}

#[derive(Subcommand)]
enum RolloutAction {
    /// Clear the pause and the guard's trip: the rollout steps on from where the dial is.
    Resume {
        /// The route's name in the configuration.
        route: String,
        /// Why (kept in the audit trail; default "rollout resumed").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Where the admin API is and how to print its answer. The token is read from
/// STRANGLER_ADMIN_TOKEN only: a flag would leave it in shell history and `ps`.
#[derive(Args)]
struct AdminArgs {
    /// Admin API (http:// only) [env: STRANGLER_ADMIN] [default: http://127.0.0.1:9090]
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// Print the API's JSON answer as-is.
    #[arg(long)]
    json: bool,
}

/// What every change carries.
#[derive(Args)]
struct ChangeArgs {
    /// Why (kept in the audit trail).
    #[arg(long)]
    reason: String,
    /// Refuse the change unless this version is in force (read it from `status`).
    #[arg(long, value_name = "N")]
    expected_version: Option<u64>,
}

fn main() -> ExitCode {
    strangler::ingress::body_budget::return_freed_buffers();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match strangler::config::load(&file) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("{w}");
                }
                println!("{}: ok ({} route(s))", file.display(), cfg.routes.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => with_config(cli.log_format, &config, Role::Proxy),
        Command::Compare { config } => with_config(cli.log_format, &config, Role::Comparator),
        Command::Demo { share, rate, listen, admin } => {
            logging::init(cli.log_format);
            if let Some(bad) = share.filter(|s| strangler::route::assign::Share::from_percent(*s).is_err()) {
                eprintln!("strangler demo: --share expects a percent from 0 to 100 with at most two decimals, found {bad}");
                return ExitCode::from(2);
            }
            let env = |var: &str| std::env::var(var).ok();
            let addrs = strangler::demo::listen::DemoAddrs::choose(listen, admin, &env);
            let (listen, admin) = match addrs {
                Ok(a) => (a.listen, a.admin),
                Err(e) => {
                    eprintln!("strangler demo: {e}");
                    return ExitCode::from(2);
                }
            };
            let token = env(strangler::control::client::TOKEN_ENV).map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
            let opts = DemoOptions { share, rate, disagree_bp: 200, listen, admin, token };
            block_on(demo(opts))
        }
        Command::SampleMonolith { listen } => {
            logging::init(cli.log_format);
            block_on(strangler::demo::cli::sample_monolith(listen))
        }
        Command::Status { admin } => operate(admin, Call::Status),
        Command::Dial { route, percent, change: ChangeArgs { reason, expected_version }, admin } => {
            operate(admin, Call::Share { route, percent, reason, expected_version })
        }
        Command::Mode { route, mode, change: ChangeArgs { reason, expected_version }, admin } => {
            operate(admin, Call::Mode { route, mode, reason, expected_version })
        }
        Command::Rollback { route, reason, admin } => operate(admin, Call::Rollback { route, reason }),
        Command::Rollout { action: RolloutAction::Resume { route, reason, admin } } => {
            operate(admin, Call::Resume { route, reason })
        }
        Command::Audit { route, limit, admin } => operate(admin, Call::Audit { route, limit }),
        Command::Reload { admin } => operate(admin, Call::Reload),
        Command::Contract { action: ContractAction::Check { old, new, mode } } => {
            let mode = mode.parse().expect("clap checked the mode");
            ExitCode::from(strangler::contract::cli::run(&old, &new, mode))
        }
    }
}

/// One call to the admin API: the answer on stdout, or the reason on stderr and its exit code
/// (1 refused, 2 usage, 3 unreachable). With `--json` a refusal's body goes to stdout too.
fn operate(args: AdminArgs, call: Call) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strangler: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async { Admin::from_env(args.admin.as_deref())?.run(&call, args.json).await });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let (true, ClientError::Refused { body, .. }) = (args.json, &e) {
                println!("{}", String::from_utf8_lossy(body).trim_end());
            }
            eprintln!("strangler: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn with_config(format: LogFormat, config: &std::path::Path, role: Role) -> ExitCode {
    logging::init(format);
    match strangler::config::load(config) {
        Ok(cfg) => block_on(run(cfg, role, config.to_path_buf())),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn block_on(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strangler: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strangler: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Kafka clients closing against an unreachable broker must not hold the exit forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}

async fn demo(opts: DemoOptions) -> anyhow::Result<()> {
    let demo = strangler::demo::scene::start(opts).await?;
    println!("{}", demo.banner());
    wait_for_signal().await?;
    tracing::info!("shutdown signal received; stopping the demo");
    demo.shutdown().await;
    Ok(())
}

async fn run(cfg: strangler::config::Validated, role: Role, path: PathBuf) -> anyhow::Result<()> {
    let opts = strangler::app::Options { role, config_path: Some(path), ..Default::default() };
    let running = strangler::app::start(cfg, opts).await?;
    // Printed on stdout, one fact per line, so people and scripts can find the addresses.
    if role == Role::Proxy {
        println!("strangler listening on {}", running.public_addr);
    }
    println!("strangler admin on http://{}/metrics", running.admin_addr);
    if running.embedded {
        println!("strangler kafka bootstrap {} (embedded, in-memory: NOTHING IS DURABLE)", running.brokers);
    } else {
        println!("strangler kafka bootstrap {}", running.brokers);
    }
    // SIGHUP reloads the file; an invalid file leaves the running configuration in force.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let stop = wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            res = &mut stop => { res?; break; }
            _ = hup.recv() => {
                if let Err(e) = running.reload().await {
                    eprintln!("strangler: reload refused, previous configuration kept:\n{e}");
                }
            }
        }
    }
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
