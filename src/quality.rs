//! `tessera quality run`: measure a product's quality where its rows are, and
//! report the run to the catalog.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tessera_contracts::api::Health;
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs;

#[derive(Debug, Subcommand)]
pub enum QualityCommand {
    /// Run the checks of a product's latest contract on its Delta table and report
    /// the results; exits 1 when the product is failing.
    Run {
        /// `domain.product`
        #[arg(long)]
        product: String,
    },
}

pub async fn run(global: &crate::cli::Global, command: QualityCommand) -> anyhow::Result<ExitCode> {
    let QualityCommand::Run { product } = command;
    let (domain, name) = crate::cli::product_ref(&product)?;
    let (domain, name) = (domain.as_str(), name.as_str());
    let json = global.json();
    let client = global.client()?;
    let found = client.product(domain, name).await?.value;
    let version = found
        .latest_contract_version
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{product} has no contract yet: nothing to check"))?;
    let stored = client.contract(domain, name, &version).await?;
    let format = DocumentFormat::from_content_type(&stored.media_type)
        .ok_or_else(|| anyhow::anyhow!("unexpected contract media type {}", stored.media_type))?;
    let contract = odcs::parse(format, &stored.document).map_err(|e| anyhow::anyhow!("contract {version}: {e}"))?;
    let major = semver::Version::parse(&version)?.major;
    let port = found
        .output_ports
        .iter()
        .find(|p| u64::from(p.major_version) == major)
        .ok_or_else(|| anyhow::anyhow!("{product} has no output port for major version {major}"))?;
    let location = port
        .location
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("only the owners of {product} may check it: its location is theirs to see"))?;
    let spinner = crate::cli::spinner(&format!("checking {product} at {location}"));
    let measured = tessera_quality::run(&contract, location, &HashMap::new(), chrono::Utc::now()).await;
    spinner.finish_and_clear();
    let measured = measured.with_context(|| format!("cannot check {location}"))?;
    let stored = client.report_quality(domain, name, &measured).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stored)?);
    } else {
        crate::contract::print_results(&stored.results);
        println!(
            "{product}: {} (run {}, table version {:?})",
            stored.health.as_str(),
            stored.id,
            stored.table_version
        );
    }
    Ok(if stored.health == Health::Failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
