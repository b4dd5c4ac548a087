//! `llm-router` command line.

use std::path::PathBuf;

use clap::Parser;
use llm_router::{Config, Server, Settings};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// One OpenAI-compatible endpoint in front of a fleet of llm-node machines.
///
/// Every option can be given as a flag, as an environment variable, or in a TOML file passed with
/// --config (keys are the option names with underscores, e.g. `node_timeout = "30s"`). Flags and
/// environment variables win over the file. Logs go to stderr; RUST_LOG sets the filter
/// (default: info).
#[derive(Debug, Parser)]
#[command(name = "llm-router", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "LLM_ROUTER_CONFIG")]
    config: Option<PathBuf>,

    /// Validate the configuration, print it and exit.
    #[arg(long)]
    check_config: bool,

    /// Log format.
    #[arg(
        long,
        env = "LLM_ROUTER_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let file = match &cli.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let config = Config::try_from(cli.settings.or(file))?;
    if cli.check_config {
        println!("{config:#?}");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server.run(shutdown).await
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
    shutdown.cancel();
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
