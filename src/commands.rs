//! The catalog commands of the CLI: `login`, `whoami`, `status`, `domain`,
//! `product`, `access` and `policy`, on the SDK.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;
use tessera_contracts::api::{
    AccessApproval, AccessDenial, AccessRequestCreate, AccessRequestStatus, DomainCreate, OutputPort, ProductCreate,
    ProductStatus, ProductUpdate, Visibility,
};
use tessera_contracts::policy::{GrantSpec, MaskSpec, RowFilterSpec};
use tessera_sdk::Client;

use crate::cli::{Global, Hinted, Login, PAGE, all_pages, print_items, print_json, print_table, product_ref};
use tessera_sdk::{AccessRequestParams, Paging, PolicyParams, ProductParams};

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Every domain.
    List,
    /// One domain.
    Show { name: String },
    /// Create a domain owned by a team (admins).
    Create {
        name: String,
        #[arg(long)]
        owner_team: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Products you can see, with filters.
    List {
        #[arg(long)]
        domain: Option<String>,
        /// Words to look for in names, titles and descriptions.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        tag: Option<String>,
    },
    /// One product: owners, lifecycle, ports, contract, health.
    Show {
        /// `domain.product`
        product: String,
    },
    /// Register a product (draft) with its output port.
    Create {
        /// `domain.product`
        product: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The Delta table of its output port: a path or URL (`s3://bucket/prefix`).
        #[arg(long, value_name = "URI")]
        location: Option<String>,
        /// The major version the output port serves.
        #[arg(long, default_value_t = 1)]
        major: u32,
        /// Upstream products (`domain.product`), repeatable.
        #[arg(long = "input", value_name = "DOMAIN.PRODUCT")]
        inputs: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, value_enum, default_value_t = VisibilityArg::Discoverable)]
        visibility: VisibilityArg,
    },
    /// Move a product through its lifecycle: draft -> published -> deprecated -> retired.
    Status {
        /// `domain.product`
        product: String,
        #[arg(value_enum)]
        status: StatusArg,
        /// When a deprecated product stops being served (YYYY-MM-DD).
        #[arg(long)]
        sunset: Option<NaiveDate>,
    },
    /// Upstream and downstream products.
    Lineage {
        /// `domain.product`
        product: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VisibilityArg {
    Discoverable,
    Restricted,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Published,
    Deprecated,
    Retired,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Ask a product's owners for access, for one purpose.
    Request {
        /// `domain.product`
        product: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        justification: String,
    },
    /// Your requests, and those for the products you own.
    List {
        #[arg(long, value_enum)]
        status: Option<RequestStatusArg>,
        /// `domain.product`
        #[arg(long)]
        product: Option<String>,
    },
    /// Approve a request: a grant for the requester, that product and purpose.
    Approve {
        id: i64,
        /// When the grant ends (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RequestStatusArg {
    Pending,
    Approved,
    Denied,
}

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

pub async fn login(global: &Global) -> anyhow::Result<ExitCode> {
    let endpoint = global.endpoint()?;
    let key = match &global.key {
        Some(k) => k.clone(),
        None => {
            eprint!("API key for {endpoint}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the key")?;
            line.trim().to_string()
        }
    };
    if key.is_empty() {
        return Err(Hinted::new("no API key given", "pass --key <KEY> or type it when asked").into());
    }
    let who = Client::new(endpoint.clone(), &key)?
        .whoami()
        .await
        .context("the platform did not accept the key")?;
    let path = Login { endpoint, key }.write()?;
    if global.json() {
        print_json(&who)?;
    } else {
        println!(
            "signed in as {} ({}); saved in {}",
            who.principal.name,
            if who.principal.admin { "admin" } else { "user" },
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(global: &Global) -> anyhow::Result<ExitCode> {
    let who = global.client()?.whoami().await?;
    if global.json() {
        print_json(&who)?;
    } else {
        println!(
            "{}{}",
            who.principal.name,
            if who.principal.admin { " (admin)" } else { "" }
        );
        let a = &who.principal.attributes;
        println!("  teams:    {}", join(&who.teams));
        println!("  groups:   {}", join(&a.groups));
        println!("  regions:  {}", join(&a.regions));
        println!("  purposes: {}", join(&a.purposes));
    }
    Ok(ExitCode::SUCCESS)
}

fn join(v: &[String]) -> String {
    if v.is_empty() { "-".into() } else { v.join(", ") }
}

/// The platform's version and every gateway's bundle sync, like `istioctl proxy-status`.
pub async fn status(global: &Global) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let version = client.version().await?;
    // Gateways' sync is for admins; others still get the catalog's version.
    let gateways = match client.gateways().await {
        Ok(g) => Some(g),
        Err(e) if e.is_forbidden() => None,
        Err(e) => return Err(e.into()),
    };
    let Some(gateways) = gateways else {
        if global.json() {
            print_json(&serde_json::json!({"endpoint": global.endpoint()?, "version": version}))?;
        } else {
            println!("{} at catalog version {version}", global.endpoint()?);
            println!("(gateways and their sync are shown to platform admins)");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let stale = gateways
        .iter()
        .any(|g| g.state != tessera_contracts::api::GatewayState::Synced);
    if global.json() {
        print_json(&serde_json::json!({"endpoint": global.endpoint()?, "version": version, "gateways": gateways}))?;
    } else {
        println!("{} at catalog version {version}", global.endpoint()?);
        let rows: Vec<Vec<String>> = gateways
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    format!("{:?}", g.state).to_uppercase(),
                    g.version.to_string(),
                    g.hash.chars().take(12).collect(),
                    g.reported_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    g.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("no gateway has reported yet");
        } else {
            print_table(
                &["GATEWAY", "STATE", "VERSION", "BUNDLE", "REPORTED (UTC)", "ERROR"],
                &rows,
            );
        }
    }
    // A gateway out of sync is a finding, for scripts that watch the mesh.
    Ok(if stale {
        ExitCode::from(crate::cli::exit::FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn domain(global: &Global, command: DomainCommand) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    match command {
        DomainCommand::List => {
            let items = all_pages(async |cursor| client.domains(&Paging { limit: PAGE, cursor }).await).await?;
            print_items(global, &items, &["DOMAIN", "OWNER TEAM", "TITLE"], |d| {
                vec![d.name.clone(), d.owner_team.clone(), d.title.clone()]
            })?;
        }
        DomainCommand::Show { name } => {
            let d = client.domain(&name).await?.value;
            if global.json() {
                print_json(&d)?;
            } else {
                println!("{} ({}), owned by {}", d.name, d.title, d.owner_team);
                if !d.description.is_empty() {
                    println!("  {}", d.description);
                }
            }
        }
        DomainCommand::Create {
            name,
            owner_team,
            title,
            description,
        } => {
            let d = client
                .create_domain(&DomainCreate {
                    name,
                    title,
                    description,
                    owner_team,
                })
                .await?;
            if global.json() {
                print_json(&d)?;
            } else {
                println!("created domain {}, owned by {}", d.name, d.owner_team);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn product(global: &Global, command: ProductCommand) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    match command {
        ProductCommand::List { domain, search, tag } => {
            let items = all_pages(async |cursor| {
                let params = ProductParams {
                    domain: domain.clone(),
                    q: search.clone(),
                    tag: tag.clone(),
                    limit: PAGE,
                    cursor,
                    ..ProductParams::default()
                };
                client.products(&params).await
            })
            .await?;
            let header = ["PRODUCT", "STATUS", "CONTRACT", "HEALTH", "OWNER TEAM", "TITLE"];
            print_items(global, &items, &header, |p| {
                vec![
                    format!("{}.{}", p.domain, p.name),
                    p.status.as_str().to_string(),
                    p.latest_contract_version.clone().unwrap_or_else(|| "-".into()),
                    p.health.as_str().to_string(),
                    p.owner_team.clone(),
                    p.title.clone(),
                ]
            })?;
        }
        ProductCommand::Show { product } => {
            let (d, p) = product_ref(&product)?;
            let found = client.product(&d, &p).await?.value;
            if global.json() {
                print_json(&found)?;
            } else {
                println!("{}.{}: {}", found.domain, found.name, found.title);
                if !found.description.is_empty() {
                    println!("  {}", found.description);
                }
                println!("  owner team:  {}", found.owner_team);
                println!(
                    "  status:      {} ({})",
                    found.status.as_str(),
                    format!("{:?}", found.visibility).to_lowercase()
                );
                println!(
                    "  contract:    {}",
                    found.latest_contract_version.as_deref().unwrap_or("none yet")
                );
                println!("  health:      {}", found.health.as_str());
                for port in &found.output_ports {
                    println!("  output v{}:   {}", port.major_version, port.location);
                }
                if !found.input_ports.is_empty() {
                    println!("  inputs:      {}", found.input_ports.join(", "));
                }
                if !found.tags.is_empty() {
                    println!("  tags:        {}", found.tags.join(", "));
                }
                println!("  SQL name:    {}.{}", found.domain, found.name);
            }
        }
        ProductCommand::Create {
            product,
            title,
            description,
            location,
            major,
            inputs,
            tags,
            visibility,
        } => {
            let (d, p) = product_ref(&product)?;
            for input in &inputs {
                product_ref(input)?;
            }
            let created = client
                .create_product(
                    &d,
                    &ProductCreate {
                        name: p,
                        title,
                        description,
                        owner_team: None,
                        tags,
                        visibility: match visibility {
                            VisibilityArg::Discoverable => Visibility::Discoverable,
                            VisibilityArg::Restricted => Visibility::Restricted,
                        },
                        output_ports: location
                            .map(|location| OutputPort {
                                major_version: major,
                                location,
                            })
                            .into_iter()
                            .collect(),
                        input_ports: inputs,
                        compatibility: Default::default(),
                    },
                )
                .await?;
            if global.json() {
                print_json(&created)?;
            } else {
                println!(
                    "created {}.{} (draft); next: `tessera contract publish FILE --product {}.{}`",
                    created.domain, created.name, created.domain, created.name
                );
            }
        }
        ProductCommand::Status {
            product,
            status,
            sunset,
        } => {
            let (d, p) = product_ref(&product)?;
            let current = client.product(&d, &p).await?;
            let update = ProductUpdate {
                status: Some(match status {
                    StatusArg::Published => ProductStatus::Published,
                    StatusArg::Deprecated => ProductStatus::Deprecated,
                    StatusArg::Retired => ProductStatus::Retired,
                }),
                sunset_date: sunset,
                ..ProductUpdate::default()
            };
            let updated = client.update_product(&d, &p, &update, current.etag.as_deref()).await?;
            if global.json() {
                print_json(&updated)?;
            } else {
                println!("{}.{} is now {}", updated.domain, updated.name, updated.status.as_str());
            }
        }
        ProductCommand::Lineage { product } => {
            let (d, p) = product_ref(&product)?;
            let lineage = client.product_lineage(&d, &p).await?;
            if global.json() {
                print_json(&lineage)?;
            } else {
                for edge in &lineage.edges {
                    println!("{} -> {}", edge.from, edge.to);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Hinted::new(format!("{s:?} is not a date"), "give YYYY-MM-DD or an RFC 3339 instant"))?;
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).context("invalid date")
}

pub async fn access(global: &Global, command: AccessCommand) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let request = match command {
        AccessCommand::Request {
            product,
            purpose,
            justification,
        } => {
            let (d, p) = product_ref(&product)?;
            client
                .request_access(&d, &p, &AccessRequestCreate { purpose, justification })
                .await?
        }
        AccessCommand::List { status, product } => {
            let (domain, product) = match product.as_deref().map(product_ref).transpose()? {
                Some((d, p)) => (Some(d), Some(p)),
                None => (None, None),
            };
            let status = status.map(|s| match s {
                RequestStatusArg::Pending => AccessRequestStatus::Pending,
                RequestStatusArg::Approved => AccessRequestStatus::Approved,
                RequestStatusArg::Denied => AccessRequestStatus::Denied,
            });
            let items = all_pages(async |cursor| {
                let params = AccessRequestParams {
                    status,
                    domain: domain.clone(),
                    product: product.clone(),
                    limit: PAGE,
                    cursor,
                };
                client.access_requests(&params).await
            })
            .await?;
            let header = ["ID", "PRODUCT", "REQUESTER", "PURPOSE", "STATUS", "JUSTIFICATION"];
            print_items(global, &items, &header, |r| {
                vec![
                    r.id.to_string(),
                    format!("{}.{}", r.domain, r.product),
                    r.requester.clone(),
                    r.purpose.clone(),
                    format!("{:?}", r.status).to_lowercase(),
                    r.justification.clone(),
                ]
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        AccessCommand::Approve { id, expires, note } => {
            let expires_at = expires.as_deref().map(parse_instant).transpose()?;
            client.approve_access(id, &AccessApproval { expires_at, note }).await?
        }
        AccessCommand::Deny { id, note } => client.deny_access(id, &AccessDenial { note }).await?,
    };
    if global.json() {
        print_json(&request)?;
    } else {
        println!(
            "request {}: {} asks {}.{} for purpose {}: {}",
            request.id,
            request.requester,
            request.domain,
            request.product,
            request.purpose,
            format!("{:?}", request.status).to_lowercase()
        );
        if let Some(grant) = &request.grant_name {
            println!("  granted by policy {grant}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
