//! `tessera policy`: grants, masks and row filters, listed, shown, applied from files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;
use tessera_contracts::policy::{GrantSpec, MaskSpec, RowFilterSpec};
use tessera_sdk::Client;

use crate::cli::{Global, Hinted, PAGE, all_pages, print_json, print_table};
use tessera_sdk::PolicyParams;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Grants, masks and row filters.
    List {
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Only policies within this domain (how its owners list theirs; admins see all).
        #[arg(long)]
        domain: Option<String>,
    },
    /// One policy as JSON.
    Show {
        #[arg(value_enum)]
        kind: KindArg,
        name: String,
    },
    /// Create or replace the policies of a YAML or JSON file: one policy or a
    /// list, each with `kind: grant | mask | row_filter` and its fields.
    Apply { file: PathBuf },
    /// Delete a policy.
    Delete {
        #[arg(value_enum)]
        kind: KindArg,
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Grant,
    Mask,
    RowFilter,
}

/// One policy of a file given to `tessera policy apply`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum PolicyDoc {
    Grant(GrantSpec),
    Mask(MaskSpec),
    RowFilter(RowFilterSpec),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PolicyFile {
    One(PolicyDoc),
    Many(Vec<PolicyDoc>),
}

pub async fn policy(global: &Global, command: PolicyCommand) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    match command {
        PolicyCommand::List { kind, domain } => {
            let wants = |k: KindArg| kind.is_none_or(|want| want == k);
            let mut rows = Vec::new();
            let mut all = serde_json::Map::new();
            if wants(KindArg::Grant) {
                let items = all_pages(async |cursor| {
                    client
                        .grants(&PolicyParams {
                            domain: domain.clone(),
                            limit: PAGE,
                            cursor,
                        })
                        .await
                })
                .await?;
                for g in &items {
                    rows.push(vec![
                        "grant".into(),
                        g.spec.name.clone(),
                        serde_json::to_string(&g.spec.subject)?,
                        serde_json::to_string(&g.spec.target)?,
                        g.spec.purposes.join(","),
                    ]);
                }
                all.insert("grants".into(), serde_json::to_value(items)?);
            }
            if wants(KindArg::Mask) {
                let items = all_pages(async |cursor| {
                    client
                        .masks(&PolicyParams {
                            domain: domain.clone(),
                            limit: PAGE,
                            cursor,
                        })
                        .await
                })
                .await?;
                for m in &items {
                    rows.push(vec![
                        "mask".into(),
                        m.spec.name.clone(),
                        serde_json::to_string(&m.spec.columns)?,
                        serde_json::to_string(&m.spec.target)?,
                        serde_json::to_string(&m.spec.function)?,
                    ]);
                }
                all.insert("masks".into(), serde_json::to_value(items)?);
            }
            if wants(KindArg::RowFilter) {
                let items = all_pages(async |cursor| {
                    client
                        .row_filters(&PolicyParams {
                            domain: domain.clone(),
                            limit: PAGE,
                            cursor,
                        })
                        .await
                })
                .await?;
                for f in &items {
                    rows.push(vec![
                        "row_filter".into(),
                        f.spec.name.clone(),
                        f.spec.expression.clone(),
                        format!("{}.{}", f.spec.domain, f.spec.product),
                        String::new(),
                    ]);
                }
                all.insert("row_filters".into(), serde_json::to_value(items)?);
            }
            if global.json() {
                print_json(&all)?;
            } else {
                print_table(&["KIND", "NAME", "WHO / WHAT", "ON", "HOW"], &rows);
            }
        }
        PolicyCommand::Show { kind, name } => {
            let value = match kind {
                KindArg::Grant => serde_json::to_value(client.grant(&name).await?.value)?,
                KindArg::Mask => serde_json::to_value(client.mask(&name).await?.value)?,
                KindArg::RowFilter => serde_json::to_value(client.row_filter(&name).await?.value)?,
            };
            print_json(&value)?;
        }
        PolicyCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let parsed: PolicyFile = serde_yaml_ng::from_str(&text).map_err(|e| {
                Hinted::new(
                    format!("{}: {e}", file.display()),
                    "each policy needs `kind: grant | mask | row_filter` and the fields of /api/v1/grants, /masks or /row-filters",
                )
            })?;
            let docs = match parsed {
                PolicyFile::One(d) => vec![d],
                PolicyFile::Many(v) => v,
            };
            for doc in docs {
                let (kind, name, created) = apply(&client, doc).await?;
                if !global.json() {
                    println!("{kind} {name}: {}", if created { "created" } else { "replaced" });
                }
            }
        }
        PolicyCommand::Delete { kind, name } => {
            match kind {
                KindArg::Grant => client.delete_grant(&name, None).await?,
                KindArg::Mask => client.delete_mask(&name, None).await?,
                KindArg::RowFilter => client.delete_row_filter(&name, None).await?,
            }
            if !global.json() {
                println!("deleted {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates a policy, or replaces it (at the revision just read) when it exists:
/// `(kind, name, created)`.
macro_rules! upsert {
    ($client:expr, $spec:expr, $kind:literal, $get:ident, $replace:ident, $create:ident) => {
        match $client.$get(&$spec.name).await {
            Ok(current) => {
                $client.$replace(&$spec.name, &$spec, current.etag.as_deref()).await?;
                ($kind, $spec.name, false)
            }
            Err(e) if e.is_not_found() => {
                $client.$create(&$spec).await?;
                ($kind, $spec.name, true)
            }
            Err(e) => return Err(e.into()),
        }
    };
}

async fn apply(client: &Client, doc: PolicyDoc) -> anyhow::Result<(&'static str, String, bool)> {
    Ok(match doc {
        PolicyDoc::Grant(spec) => upsert!(client, spec, "grant", grant, replace_grant, create_grant),
        PolicyDoc::Mask(spec) => upsert!(client, spec, "mask", mask, replace_mask, create_mask),
        PolicyDoc::RowFilter(spec) => {
            upsert!(
                client,
                spec,
                "row_filter",
                row_filter,
                replace_row_filter,
                create_row_filter
            )
        }
    })
}
