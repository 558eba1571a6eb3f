//! `tessera publish FILE --product P`: a Parquet or CSV file appended to (or
//! replacing) a product's Delta output port, checked against the product's
//! contract first; when a rule is broken nothing is written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use tessera_lake::WriteMode;
use tessera_sdk::publish::{PublishError, Publisher, read_file_as};

use crate::cli::{Global, print_json, product_ref};

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// A Parquet (`.parquet`) or CSV (`.csv`, with a header row) file.
    pub file: PathBuf,
    /// `domain.product`
    #[arg(long)]
    pub product: String,
    /// Append the rows, or replace the table's rows with them.
    #[arg(long, value_enum, default_value_t = ModeArg::Append)]
    pub mode: ModeArg,
    /// The major version whose output port to publish to [default: the latest contract's].
    #[arg(long)]
    pub major: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Append,
    Overwrite,
}

pub async fn run(global: &Global, args: PublishArgs) -> anyhow::Result<ExitCode> {
    let (domain, name) = product_ref(&args.product)?;
    let mut publisher = Publisher::new(global.client()?);
    if let Some(major) = args.major {
        publisher = publisher.with_major_version(major);
    }
    let mode = match args.mode {
        ModeArg::Append => WriteMode::Append,
        ModeArg::Overwrite => WriteMode::Overwrite,
    };
    let bar = crate::cli::progress(3, "publishing");
    bar.set_message("reading the contract");
    let target = publisher.target(&domain, &name).await?;
    bar.inc(1);
    bar.set_message(format!("reading {}", args.file.display()));
    // CSV columns take the contract's types.
    let batches = read_file_as(&args.file, &target.schema()?)?;
    bar.inc(1);
    bar.set_message("checking against the contract, then committing");
    let result = target.publish(batches, mode, &Default::default()).await;
    bar.finish_and_clear();
    match result {
        Ok(published) => {
            if global.json() {
                print_json(&serde_json::json!({
                    "product": args.product,
                    "location": published.location,
                    "contract_version": published.contract_version,
                    "table_version": published.table_version,
                    "rows": published.rows,
                    "mode": format!("{:?}", published.mode).to_lowercase(),
                    "warnings": published.warnings,
                }))?;
            } else {
                println!(
                    "{}: {} row(s) published as Delta version {} of {} (contract {})",
                    args.product,
                    published.rows,
                    published.table_version,
                    published.location,
                    published.contract_version
                );
                for w in &published.warnings {
                    println!("  warning: {w}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(PublishError::Violations(violations)) => {
            if global.json() {
                print_json(
                    &serde_json::json!({"product": args.product, "published": false, "violations": violations}),
                )?;
            } else {
                eprintln!(
                    "{}: refused, nothing was written: {} violation(s) of contract {}",
                    args.product,
                    violations.len(),
                    target.contract.version
                );
                for v in &violations {
                    eprintln!("  - {v}");
                }
            }
            Ok(ExitCode::from(crate::cli::exit::FOUND))
        }
        Err(e) => Err(e.into()),
    }
}
