//! `tessera`: the platform's single binary, and the CLI of domain teams and
//! analysts (on the SDK).

mod cli;
mod commands;
mod contract;
mod demo;
mod platform;
mod portal;
mod publish;
mod quality;
mod sql;
mod tls;

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Tessera: an open data mesh platform.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true, after_help = cli::EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the demo mesh: generate TPC-H as Delta tables in three domains,
    /// register products, contracts, personas and policies, then serve and print
    /// how to connect as each persona. Safe to re-run.
    Demo(demo::DemoArgs),
    /// Start the platform: the catalog's REST API (on embedded SQLite by default)
    /// and a gateway answering SQL over HTTP, PostgreSQL wire and Flight SQL.
    Serve(platform::ServeArgs),
    /// Run a gateway alone, following a catalog (--endpoint, with an admin --key).
    Gateway(platform::GatewayArgs),
    /// Save the platform's URL and your API key for the other commands.
    Login,
    /// Who the API key belongs to: teams, groups, regions, purposes.
    Whoami,
    /// The catalog's version and every gateway's bundle sync.
    Status,
    /// Domains: list, show, create.
    #[command(subcommand)]
    Domain(commands::DomainCommand),
    /// Data products: list, show, create, lifecycle, lineage.
    #[command(subcommand)]
    Product(commands::ProductCommand),
    /// ODCS data contracts: lint, diff, test against a table, publish to the catalog.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Append or overwrite a product's data from a Parquet or CSV file, checked
    /// against its contract first (nothing is written when a rule is broken).
    Publish(publish::PublishArgs),
    /// Run SQL through the gateway as yourself.
    Sql(sql::SqlArgs),
    /// Access requests: request, list, approve, deny.
    #[command(subcommand)]
    Access(commands::AccessCommand),
    /// Governance policies: grants, column masks, row filters.
    #[command(subcommand)]
    Policy(commands::PolicyCommand),
    /// Run a product's quality checks and report them to the catalog.
    #[command(subcommand)]
    Quality(quality::QualityCommand),
    /// Print the catalog's OpenAPI document.
    Openapi,
    /// Print a shell completion script (e.g. `tessera completions bash > /etc/bash_completion.d/tessera`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let Cli { mut global, command } = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    global.key_on_command_line = on_command_line(&matches, "key");
    if global.key_on_command_line {
        let instead = match &command {
            Command::Gateway(_) => "--key-file FILE or TESSERA_GATEWAY_KEY_FILE",
            Command::Login => "`tessera login` without --key (it reads the key from stdin)",
            _ => "TESSERA_API_KEY or `tessera login`",
        };
        cli::warn_secret_flag("--key", instead);
    }
    let success = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let sql_only = matches!(global.output, cli::Output::Csv | cli::Output::Arrow);
    if sql_only && !matches!(command, Command::Sql(_)) {
        eprintln!("error: --output csv and --output arrow are for `tessera sql`; use text or json");
        return ExitCode::from(cli::exit::USAGE);
    }
    let result = match command {
        Command::Demo(args) => success(demo::run(args).await),
        Command::Serve(args) => success(serve(args).await),
        Command::Gateway(args) => success(platform::gateway(&global, args).await),
        Command::Openapi => success(print_openapi()),
        Command::Login => commands::login(&global).await,
        Command::Whoami => commands::whoami(&global).await,
        Command::Status => commands::status(&global).await,
        Command::Domain(c) => commands::domain(&global, c).await,
        Command::Product(c) => commands::product(&global, c).await,
        Command::Contract(c) => contract::run(&global, c).await,
        Command::Publish(args) => publish::run(&global, args).await,
        Command::Sql(args) => sql::run(&global, args).await,
        Command::Access(c) => commands::access(&global, c).await,
        Command::Policy(c) => commands::policy(&global, c).await,
        Command::Quality(c) => quality::run(&global, c).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| cli::report(&e))
}

/// Whether the argument `id` was given on the command line (not taken from the
/// environment or a default), at this level or in a subcommand's matches.
fn on_command_line(matches: &clap::ArgMatches, id: &str) -> bool {
    let here = matches
        .ids()
        .any(|i| i.as_str() == id)
        .then(|| matches.value_source(id))
        .flatten()
        == Some(clap::parser::ValueSource::CommandLine);
    here || matches.subcommand().is_some_and(|(_, sub)| on_command_line(sub, id))
}

fn print_openapi() -> anyhow::Result<()> {
    let doc = tessera_catalog::openapi_with(Some(&tessera_gateway::server::http::openapi()))
        .to_pretty_json()
        .context("cannot render the OpenAPI document")?;
    println!("{doc}");
    Ok(())
}

pub(crate) fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,sqlx=warn,tower_http=warn,buoyant_kernel=warn,delta_kernel=warn,deltalake=warn,deltalake_core=warn",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: platform::ServeArgs) -> anyhow::Result<()> {
    let running = platform::start(&args, None).await?;
    running.print_banner();
    platform::print_endpoints(
        &running.endpoints,
        &running.url,
        running.bootstrap_key.as_deref(),
        running.url.starts_with("https://"),
    );
    if let Some(key) = &running.bootstrap_key {
        println!("Bootstrap admin API key (shown once): {key}");
        println!(
            "  try: curl -H 'Authorization: Bearer {key}' {}/api/v1/whoami",
            running.url
        );
    }
    running.wait().await
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
