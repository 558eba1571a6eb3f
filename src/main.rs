//! `tessera`: the platform's single binary.

mod contract;
mod quality;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tessera_catalog::Application;
use tessera_catalog::config::{Config, Overrides};
use tracing_subscriber::EnvFilter;

/// Tessera: an open data mesh platform.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the platform: the catalog's REST API (on embedded SQLite by default).
    Serve(ServeArgs),
    /// Print the catalog's OpenAPI document.
    Openapi,
    /// Lint, diff, test and export ODCS data contracts.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Run a product's quality checks and report them to the catalog.
    #[command(subcommand)]
    Quality(quality::QualityCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (layered: defaults < file < TESSERA_* env < flags).
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded database and other local state [default: .tessera].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Openapi => print_openapi().map(|()| std::process::ExitCode::SUCCESS),
        Command::Contract(command) => contract::run(command).await,
        Command::Quality(command) => quality::run(command).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2: could not do the work (1 means: did it, and found problems).
            std::process::ExitCode::from(2)
        }
    }
}

fn print_openapi() -> anyhow::Result<()> {
    let doc = tessera_catalog::openapi()
        .to_pretty_json()
        .context("cannot render the OpenAPI document")?;
    println!("{doc}");
    Ok(())
}

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
    };
    let config = Config::load(args.config.as_deref(), &overrides).context("invalid configuration")?;
    init_logging(&config.log_format);
    tracing::info!(?config, "starting");
    let app = Application::build(config.clone()).await?;
    let addr = app.local_addr()?;
    let url = format!("http://{addr}");
    let database = if config.uses_embedded_database() {
        format!("embedded SQLite at {}", config.data_dir.join("catalog.db").display())
    } else {
        format!("PostgreSQL ({})", app.backend())
    };
    // Plain stdout lines: scripts and tests read them.
    println!("Tessera catalog listening on {url}");
    println!("  catalog database: {database}");
    println!("  REST API:         {url}/api/v1");
    println!("  API docs:         {url}/api/v1/docs/");
    println!("  OpenAPI:          {url}/api/v1/openapi.json");
    if let Some(key) = app.bootstrap_key() {
        println!("Bootstrap admin API key (shown once): {key}");
        println!("  try: curl -H 'Authorization: Bearer {key}' {url}/api/v1/whoami");
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
