//! `llm-node` command line.

use std::path::PathBuf;

use clap::Parser;
use llm_node::{Config, Node, Settings};
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

/// Serves local LLM runtimes to an llm-router.
///
/// Starts one runtime per model on a free loopback port (llama-server by default; with --runtime
/// ollama, one `ollama serve` per model, pulling the model when absent), restarts it if it
/// crashes, registers with the router and sends heartbeats with CPU, memory and GPU figures.
/// SIGTERM or Ctrl-C stops every runtime before the node exits.
///
/// Every option can be given as a flag, an environment variable, or in a TOML file passed with
/// --config (keys are the option names with underscores; models as [[models]] tables with name,
/// path and optional ctx_size, parallel, threads, chat_template, embeddings, swa_full,
/// cache_ram_mib, args). Flags and
/// environment variables win over the file. RUST_LOG sets the log filter (default: info).
#[derive(Debug, Parser)]
#[command(name = "llm-node", version = VERSION, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "LLM_NODE_CONFIG")]
    config: Option<PathBuf>,

    /// Validate the configuration, print it and exit.
    #[arg(long)]
    check_config: bool,

    /// Log format on stderr (the log file is always JSON lines).
    #[arg(long, env = "LLM_NODE_LOG_FORMAT", value_enum, default_value = "text")]
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
    let log = LogFile::new(&config.log_dir, llm_node::LOG_FILE_PREFIX);
    let _log_writer = llm_router_logs::init(cli.log_format, Some(&log))
        .map_err(|e| anyhow::anyhow!("cannot write logs in {}: {e}", config.log_dir.display()))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let node = Node::bind(config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone(), "stopping runtimes"));
    Ok(node.run(shutdown).await?)
}
