//! `tessera contract ...`: work with ODCS contract files from a terminal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use crate::cli::{Global, Output, print_json, product_ref};
use tessera_contracts::api::{CheckStatus, Health, QualityResult};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs::{self, compat};

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Validate a contract file (ODCS v3.1.0 / v3.2.0); every issue with its path.
    Lint { file: PathBuf },
    /// Compare two versions of a contract; exits 1 when NEW breaks consumers of OLD.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Compatibility mode to judge under.
        #[arg(long, value_enum, default_value_t = ModeArg::Consumers)]
        mode: ModeArg,
    },
    /// Check a contract against a Delta table: its schema, then its quality rules
    /// and freshness; exits 1 on a mismatch or a failing rule.
    Test {
        file: PathBuf,
        /// The Delta table: a path or URL (`s3://bucket/prefix`).
        #[arg(long, value_name = "URI")]
        table: String,
    },
    /// Print the compatibility rule table (Markdown).
    Rules,
    /// Register a contract version for a product in the catalog: validated, its
    /// schema checked against the product's table, and refused when it breaks
    /// consumers of the previous version of its major.
    Publish {
        file: PathBuf,
        /// `domain.product`
        #[arg(long)]
        product: String,
    },
    /// The contract versions registered for a product.
    List {
        /// `domain.product`
        product: String,
    },
    /// Print a product's contract document as registered (the latest, or VERSION).
    Show {
        /// `domain.product`
        product: String,
        #[arg(value_name = "VERSION")]
        contract_version: Option<String>,
    },
    /// Print a contract in YAML or JSON, as Tessera reads it (lossless).
    Export {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
        format: FormatArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Consumers,
    Strict,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Yaml,
    Json,
}

use crate::cli::exit::FOUND;

pub async fn run(global: &Global, command: ContractCommand) -> anyhow::Result<ExitCode> {
    let output = global.output;
    match command {
        ContractCommand::Lint { file } => lint(&file, output),
        ContractCommand::Diff { old, new, mode } => diff(&old, &new, mode, output),
        ContractCommand::Test { file, table } => test(&file, &table, output).await,
        ContractCommand::Publish { file, product } => publish(global, &file, &product).await,
        ContractCommand::List { product } => list(global, &product).await,
        ContractCommand::Show {
            product,
            contract_version,
        } => show(global, &product, contract_version).await,
        ContractCommand::Rules => {
            print!("{}", compat::rules_markdown());
            Ok(ExitCode::SUCCESS)
        }
        ContractCommand::Export { file, format } => {
            let contract = load(&file)?.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let format = match format {
                FormatArg::Yaml => DocumentFormat::Yaml,
                FormatArg::Json => DocumentFormat::Json,
            };
            print!("{}", odcs::write(format, &contract));
            if matches!(format, DocumentFormat::Json) {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn format_of(path: &Path) -> DocumentFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => DocumentFormat::Json,
        _ => DocumentFormat::Yaml,
    }
}

/// Reads a contract file: `Err` for I/O, `Ok(Err)` for a contract with issues.
fn load(path: &Path) -> anyhow::Result<Result<odcs::DataContract, odcs::ReadError>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(odcs::read(format_of(path), &text))
}

fn lint(file: &Path, output: Output) -> anyhow::Result<ExitCode> {
    let issues = match load(file)? {
        Ok(_) => Vec::new(),
        Err(odcs::ReadError::Invalid(issues)) => issues,
        Err(e @ odcs::ReadError::Syntax { .. }) => vec![odcs::Issue::new("", e.to_string())],
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"file": file, "valid": issues.is_empty(), "issues": issues})
        ),
        _ if issues.is_empty() => println!("{}: valid", file.display()),
        _ => {
            for issue in &issues {
                println!("{}: {issue}", file.display());
            }
            eprintln!("{} issue(s)", issues.len());
        }
    }
    Ok(if issues.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    })
}

fn read_valid(path: &Path) -> anyhow::Result<odcs::DataContract> {
    load(path)?.map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\nhint: run `tessera contract lint {}`",
            path.display(),
            path.display()
        )
    })
}

fn diff(old: &Path, new: &Path, mode: ModeArg, output: Output) -> anyhow::Result<ExitCode> {
    let (a, b) = (read_valid(old)?, read_valid(new)?);
    let mode = match mode {
        ModeArg::Consumers => compat::Mode::Consumers,
        ModeArg::Strict => compat::Mode::Strict,
        ModeArg::None => compat::Mode::None,
    };
    let same_major = match (semver::Version::parse(&a.version), semver::Version::parse(&b.version)) {
        (Ok(x), Ok(y)) => x.major == y.major,
        _ => true,
    };
    let report = compat::compare(&a, &b, mode);
    // Across majors, breaking is allowed: report, but do not fail.
    let breaking = same_major && report.is_breaking();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"old": a.version, "new": b.version, "mode": mode.as_str(), "same_major": same_major,
                               "breaking": breaking, "changes": report.changes})
        ),
        _ => {
            if report.changes.is_empty() {
                println!("no changes between {} and {}", a.version, b.version);
            } else {
                let width = report.changes.iter().map(|c| c.path.len()).max().unwrap_or(4).max(4);
                println!("{:<9}  {:<24}  {:<width$}  OLD -> NEW", "VERDICT", "RULE", "PATH");
                for c in &report.changes {
                    println!(
                        "{:<9}  {:<24}  {:<width$}  {} -> {}",
                        format!("{:?}", c.verdict).to_lowercase(),
                        c.rule,
                        c.path,
                        c.old.as_deref().unwrap_or("-"),
                        c.new.as_deref().unwrap_or("-"),
                    );
                }
            }
            if breaking {
                eprintln!(
                    "{} breaking change(s) under mode {}: publish {} as a new major version",
                    report.breaking().count(),
                    mode.as_str(),
                    b.version
                );
            } else if !same_major && report.is_breaking() {
                eprintln!(
                    "breaking changes across major versions {} -> {}: allowed",
                    a.version, b.version
                );
            }
        }
    }
    Ok(if breaking {
        ExitCode::from(FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

async fn test(file: &Path, table: &str, output: Output) -> anyhow::Result<ExitCode> {
    let contract = read_valid(file)?;
    let options = HashMap::new();
    let meta = tessera_lake::table_meta(table, &options)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no Delta table at {table}"))?;
    let mismatches = match contract.schema.as_deref() {
        Some([object, ..]) => odcs::arrow::verify(object, &meta.schema, &meta.partition_columns),
        _ => anyhow::bail!("{}: the contract has no schema object to test", file.display()),
    };
    let run = tessera_quality::run(&contract, table, &options, chrono::Utc::now()).await?;
    let health = Health::of(&run.results);
    let failed = !mismatches.is_empty() || health == Health::Failing;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"table": table, "table_version": meta.version, "mismatches": mismatches,
                               "health": health, "results": run.results})
        ),
        _ => {
            println!(
                "{table} (version {}) against {} {}",
                meta.version, contract.id, contract.version
            );
            if mismatches.is_empty() {
                println!("schema     ok");
            }
            for m in &mismatches {
                println!("schema     FAIL  {m}");
            }
            print_results(&run.results);
            println!("health: {}", health.as_str());
        }
    }
    Ok(if failed {
        ExitCode::from(FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per check result: status, rule, where, measured value against threshold.
pub fn print_results(results: &[QualityResult]) {
    for r in results {
        let status = match r.status {
            CheckStatus::Pass => "ok  ",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Error => "ERR ",
            CheckStatus::NotExecutable => "n/a ",
        };
        let measured = r.measured.map(|m| format!("measured {m}")).unwrap_or_default();
        let threshold = r.threshold.as_deref().unwrap_or("");
        let message = r.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        println!(
            "{status}  {:<28} {:<40} {measured} {threshold}{message}",
            r.rule, r.path
        );
    }
}

async fn publish(global: &Global, file: &Path, product: &str) -> anyhow::Result<ExitCode> {
    let (domain, name) = product_ref(product)?;
    // Lint locally first: the same validator, with every issue and no round trip.
    let contract = read_valid(file)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let client = global.client()?;
    match client.add_contract(&domain, &name, format_of(file), &text).await {
        Ok(stored) => {
            if global.json() {
                print_json(&stored)?;
            } else {
                println!("{product}: contract {} registered", contract.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        // Refused on its merits (breaking change, schema mismatch): a finding.
        Err(tessera_sdk::Error::Api { status, problem }) if matches!(status.as_u16(), 409 | 422) => {
            if global.json() {
                print_json(&problem)?;
            } else {
                eprintln!(
                    "{product}: contract {} refused: {}",
                    contract.version,
                    problem.detail.as_deref().unwrap_or(&problem.title)
                );
                crate::cli::print_problem_details(&problem);
                eprintln!(
                    "hint: `tessera contract diff OLD NEW` shows what breaks; a breaking change needs a new major version"
                );
            }
            Ok(ExitCode::from(FOUND))
        }
        Err(e) => Err(e.into()),
    }
}

async fn list(global: &Global, product: &str) -> anyhow::Result<ExitCode> {
    let (domain, name) = product_ref(product)?;
    let client = global.client()?;
    let items = crate::cli::all_pages(async |cursor| {
        let paging = tessera_sdk::Paging {
            limit: crate::cli::PAGE,
            cursor,
        };
        client.contracts(&domain, &name, &paging).await
    })
    .await?;
    crate::cli::print_items(global, &items, &["VERSION", "REGISTERED (UTC)", "BY"], |c| {
        vec![
            c.version.clone(),
            c.created_at.format("%Y-%m-%d %H:%M").to_string(),
            c.created_by.clone(),
        ]
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn show(global: &Global, product: &str, version: Option<String>) -> anyhow::Result<ExitCode> {
    let (domain, name) = product_ref(product)?;
    let client = global.client()?;
    let version = match version {
        Some(v) => v,
        None => client
            .product(&domain, &name)
            .await?
            .value
            .latest_contract_version
            .ok_or_else(|| anyhow::anyhow!("{product} has no contract yet"))?,
    };
    let stored = client.contract(&domain, &name, &version).await?;
    if global.json() {
        print_json(&stored)?;
    } else {
        print!("{}", stored.document);
        if !stored.document.ends_with('\n') {
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}
