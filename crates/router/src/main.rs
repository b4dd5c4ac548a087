//! `llm-router` command line.

use std::path::PathBuf;

use clap::Parser;
use llm_router::{Config, Server, Settings};
use llm_router_common::signal::stop_on_signal;
use llm_router_logs::{Format, LogFile};
use tokio_util::sync::CancellationToken;

/// `--version`: the package version and the commit it was built from (see `build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LLM_ROUTER_COMMIT"),
    ")"
);

/// One OpenAI-compatible endpoint in front of a fleet of llm-node machines.
///
/// Every option can be given as a flag, as an environment variable, or in a TOML file passed with
/// --config (keys are the option names with underscores, e.g. `node_timeout = "30s"`). Flags and
/// environment variables win over the file. Logs go to stderr and, as JSON lines, to files in
/// --log-dir; RUST_LOG sets the filter (default: info).
#[derive(Debug, Parser)]
#[command(name = "llm-router", version = VERSION, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "LLM_ROUTER_CONFIG")]
    config: Option<PathBuf>,

    /// Validate the configuration, print it and exit.
    #[arg(long)]
    check_config: bool,

    /// Log format on stderr (the log file is always JSON lines).
    #[arg(
        long,
        env = "LLM_ROUTER_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: Format,

    #[command(flatten)]
    settings: Settings,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let config = Config::try_from(cli.settings.or(file))?;
    if cli.check_config {
        println!("{config:#?}");
        return Ok(());
    }
    let log = config
        .log_dir
        .as_ref()
        .map(|dir| LogFile::new(dir, llm_router::LOG_FILE_PREFIX));
    let _log_writer = llm_router_logs::init(cli.log_format, log.as_ref())
        .map_err(|e| anyhow::anyhow!("cannot write the log file: {e}"))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(
        shutdown.clone(),
        "draining in-flight requests",
    ));
    Ok(server.run(shutdown).await?)
}
