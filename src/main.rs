//! `tessera`: the platform's single binary.

mod contract;
mod platform;
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
    /// Start the platform: the catalog's REST API (on embedded SQLite by default)
    /// and a gateway answering SQL over HTTP, PostgreSQL wire and Flight SQL.
    Serve(ServeArgs),
    /// Run a gateway alone, following a catalog over its REST API.
    Gateway(platform::GatewayArgs),
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
    /// PostgreSQL wire address of the gateway [default: 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pg_listen: Option<std::net::SocketAddr>,
    /// Arrow Flight SQL address of the gateway [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    flight_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Gateway(args) => platform::gateway(args).await.map(|()| std::process::ExitCode::SUCCESS),
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
    let doc = tessera_catalog::openapi_with(Some(&tessera_gateway::http::openapi()))
        .to_pretty_json()
        .context("cannot render the OpenAPI document")?;
    println!("{doc}");
    Ok(())
}

pub(crate) fn init_logging(format: &str) {
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
    let gateway_overrides = tessera_gateway::config::Overrides {
        pg_listen: args.pg_listen,
        flight_listen: args.flight_listen,
        http_listen: None,
    };
    let gateway_config = tessera_gateway::GatewayConfig::load(args.config.as_deref(), &gateway_overrides)
        .context("invalid gateway configuration")?;
    init_logging(&config.log_format);
    tracing::info!(?config, ?gateway_config, "starting");
    let control = std::sync::Arc::new(platform::InProcess::default());
    let source: std::sync::Arc<dyn tessera_gateway::sync::BundleSource> = control.clone();
    let hooks = tessera_gateway::Hooks {
        audit: tessera_gateway::sync::Shipper::start(source.clone(), gateway_config.name.clone()),
    };
    let engine = tessera_gateway::Engine::with_hooks(&gateway_config, hooks).context("cannot start the gateway")?;
    let extension = tessera_catalog::Extension {
        router: tessera_gateway::http::router(engine.clone()),
        openapi: tessera_gateway::http::openapi(),
    };
    let app = Application::build_with(config.clone(), Some(extension)).await?;
    let addr = app.local_addr()?;
    let url = format!("http://{addr}");
    let database = if config.uses_embedded_database() {
        format!("embedded SQLite at {}", config.data_dir.join("catalog.db").display())
    } else {
        format!("PostgreSQL ({})", app.backend())
    };
    let listeners = platform::Listeners::bind(&gateway_config).await?;
    let endpoints = listeners.endpoints(&url)?;
    let _ = control.0.set(app.catalog().clone());
    // In process, the catalog is never away: no last-known-good bundle to keep.
    let link = tessera_gateway::sync::Link {
        engine: engine.clone(),
        source,
        name: gateway_config.name.clone(),
        store: None,
    };
    platform::start_gateway(link, listeners).await;
    // Plain stdout lines: scripts and tests read them.
    println!("Tessera catalog listening on {url}");
    println!("  catalog database: {database}");
    println!("  REST API:         {url}/api/v1");
    println!("  API docs:         {url}/api/v1/docs/");
    println!("  OpenAPI:          {url}/api/v1/openapi.json");
    endpoints.print(app.bootstrap_key());
    if let Some(key) = app.bootstrap_key() {
        println!("Bootstrap admin API key (shown once): {key}");
        println!("  try: curl -H 'Authorization: Bearer {key}' {url}/api/v1/whoami");
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
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
