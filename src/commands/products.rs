//! `tessera domain` and `tessera product`.

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Subcommand, ValueEnum};
use tessera_contracts::api::{DomainCreate, OutputPort, ProductCreate, ProductStatus, ProductUpdate, Visibility};

use crate::cli::{Global, PAGE, all_pages, print_items, print_json, product_ref};
use tessera_sdk::{Paging, ProductParams};

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
        /// The Delta table of its output port: a URL (`s3://bucket/prefix`), an
        /// absolute path, or a path relative to the domain's first storage root.
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
                    storage_roots: None,
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
                    let location = port.location.as_deref().unwrap_or("(shown to its owners)");
                    println!("  output v{}:   {location}", port.major_version);
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
                                location: Some(location),
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
