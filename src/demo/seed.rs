//! Seeding the demo mesh through the SDK over the platform's REST API:
//! domains, teams, products, contracts, personas, policies and quality runs.

use anyhow::Context;
use tessera_contracts::api::{
    ApiKeyCreate, Attributes, DomainCreate, OutputPort, PrincipalCreate, PrincipalKind, PrincipalUpdate, ProductCreate,
    ProductStatus, ProductUpdate, TeamCreate,
};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs;
use tessera_sdk::Client;

use super::KEY_DESCRIPTION;
use super::mesh::*;
use crate::cli::{self};
use crate::platform::Running;

/// The admin key the demo keeps: the stored one while it works, else a new
/// one for `admin`, written straight into the store (the demo runs in the
/// platform's process, like the bootstrap).
pub(super) async fn ensure_admin_key(running: &Running, key: String) -> anyhow::Result<String> {
    if let Ok(Some(caller)) = running.catalog.authenticate(&key).await
        && caller.is_admin()
    {
        return Ok(key);
    }
    running
        .catalog
        .issue_key("tessera-demo", ADMIN, KEY_DESCRIPTION)
        .await
        .context("cannot issue the demo's admin key (is there a principal `admin`?)")
}

/// Registers what is missing; what exists is left as it is.
pub(super) async fn seed(admin: &Client) -> anyhow::Result<()> {
    for p in &PERSONAS {
        if p.name == ADMIN {
            // The bootstrap admin exists already: it gets the persona's attributes.
            let current = admin.principal(ADMIN).await?;
            let regions: Vec<String> = p.regions.iter().map(|s| (*s).to_string()).collect();
            if current.value.attributes.regions != regions {
                let attributes = Attributes {
                    regions,
                    ..current.value.attributes.clone()
                };
                let patch = PrincipalUpdate {
                    attributes: Some(attributes),
                    ..PrincipalUpdate::default()
                };
                admin
                    .update_principal(ADMIN, &patch, current.etag.as_deref())
                    .await
                    .context("cannot give the admin persona its regions")?;
            }
            continue;
        }
        match admin.principal(p.name).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                let strings = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect();
                admin
                    .create_principal(&PrincipalCreate {
                        name: p.name.into(),
                        kind: PrincipalKind::User,
                        display_name: Some(p.display.into()),
                        email: Some(format!("{}@tessera.example", p.name)),
                        admin: false,
                        roles: Vec::new(),
                        attributes: Attributes {
                            groups: strings(p.groups),
                            regions: strings(p.regions),
                            purposes: strings(p.purposes),
                        },
                    })
                    .await
                    .with_context(|| format!("cannot create persona {}", p.name))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    for d in &DOMAINS {
        match admin.team(d.team).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                admin
                    .create_team(&TeamCreate {
                        name: d.team.into(),
                        title: Some(format!("{} team", d.title)),
                        description: Some(format!("Owns the {} domain.", d.name)),
                        members: vec![d.owner.into()],
                    })
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        match admin.domain(d.name).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                admin
                    .create_domain(&DomainCreate {
                        name: d.name.into(),
                        title: Some(d.title.into()),
                        description: Some(d.description.into()),
                        owner_team: d.team.into(),
                        // The default: `<lake root>/<domain>/`.
                        storage_roots: None,
                    })
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let bar = cli::progress(PRODUCTS.len() as u64, "registering");
    for p in &PRODUCTS {
        bar.set_message(format!("{}.{}", p.domain, p.name));
        register(admin, p)
            .await
            .with_context(|| format!("cannot register {}.{}", p.domain, p.name))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    for g in grants() {
        if let Err(e) = admin.grant(&g.name).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
            admin.create_grant(&g).await?;
        }
    }
    for m in masks() {
        if let Err(e) = admin.mask(&m.name).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
            admin.create_mask(&m).await?;
        }
    }
    for f in row_filters() {
        if let Err(e) = admin.row_filter(&f.name).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
            admin.create_row_filter(&f).await?;
        }
    }
    Ok(())
}

/// One product: created with its output port, its contract registered, and
/// published once its table matches.
pub(super) async fn register(admin: &Client, p: &DemoProduct) -> anyhow::Result<()> {
    let contract =
        odcs::parse(DocumentFormat::Yaml, p.contract).map_err(|e| anyhow::anyhow!("built-in contract: {e}"))?;
    let product = match admin.product(p.domain, p.name).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => {
            admin
                .create_product(
                    p.domain,
                    &ProductCreate {
                        name: p.name.into(),
                        title: Some(p.title.into()),
                        description: Some(p.description.into()),
                        owner_team: None,
                        tags: contract.tags.clone().unwrap_or_default(),
                        visibility: Default::default(),
                        output_ports: vec![OutputPort {
                            major_version: 1,
                            // Relative: under the domain's storage root, where `generate` wrote it.
                            location: Some(p.name.to_string()),
                        }],
                        input_ports: p.inputs.iter().map(|s| (*s).to_string()).collect(),
                        compatibility: Default::default(),
                    },
                )
                .await?;
            admin.product(p.domain, p.name).await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut product = product;
    if product.value.latest_contract_version.is_none() {
        admin
            .add_contract(p.domain, p.name, DocumentFormat::Yaml, p.contract)
            .await?;
        product = admin.product(p.domain, p.name).await?;
    }
    if product.value.status == ProductStatus::Draft {
        let publish = ProductUpdate {
            status: Some(ProductStatus::Published),
            ..ProductUpdate::default()
        };
        admin
            .update_product(p.domain, p.name, &publish, product.etag.as_deref())
            .await?;
    }
    Ok(())
}

/// The persona's stored key while it works; else a new one, and the persona's
/// older demo keys revoked.
pub(super) async fn persona_key(
    running: &Running,
    admin: &Client,
    name: &str,
    stored: Option<&String>,
) -> anyhow::Result<String> {
    if let Some(key) = stored
        && let Ok(Some(caller)) = running.catalog.authenticate(key).await
        && caller.name() == name
    {
        return Ok(key.clone());
    }
    let created = admin
        .create_api_key(
            name,
            &ApiKeyCreate {
                description: Some(KEY_DESCRIPTION.into()),
                expires_at: None,
            },
        )
        .await?;
    let keys = cli::all_pages(async |cursor| {
        admin
            .api_keys(
                name,
                &tessera_sdk::Paging {
                    limit: cli::PAGE,
                    cursor,
                },
            )
            .await
    })
    .await?;
    for old in keys {
        if old.id != created.api_key.id && old.description == KEY_DESCRIPTION && old.revoked_at.is_none() {
            admin.revoke_api_key(name, &old.id).await?;
        }
    }
    Ok(created.key)
}

/// Runs every product's checks where the rows are and reports them, so that the
/// catalog shows each product's health from the start.
pub(super) async fn check_quality(admin: &Client) -> anyhow::Result<()> {
    let bar = cli::progress(PRODUCTS.len() as u64, "checking");
    let mut failing = Vec::new();
    for p in &PRODUCTS {
        bar.set_message(format!("{}.{}", p.domain, p.name));
        let product = admin.product(p.domain, p.name).await?.value;
        let contract = odcs::parse(DocumentFormat::Yaml, p.contract).map_err(|e| anyhow::anyhow!("{e}"))?;
        let location = product
            .output_ports
            .first()
            .context("the product lost its output port")?
            .location
            .as_deref()
            .context("the catalog hides the product's location from the demo's admin")?;
        let run = tessera_quality::run(&contract, location, &Default::default(), chrono::Utc::now()).await?;
        let stored = admin.report_quality(p.domain, p.name, &run).await?;
        if stored.health == tessera_contracts::api::Health::Failing {
            failing.push(format!("{}.{}", p.domain, p.name));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !failing.is_empty() {
        tracing::warn!(?failing, "some demo products fail their quality checks");
    }
    Ok(())
}
