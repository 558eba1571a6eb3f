//! `tessera demo`: the demo mesh of design.md in one command.
//!
//! Generates TPC-H as Delta tables split into the domains customers, sales and
//! supply; registers the domains and their teams, the eight products with their
//! ODCS contracts (`src/demo/contracts/`), the personas with API keys, and the
//! example policies; runs every product's quality checks; then serves the
//! platform and prints how to connect as each persona.
//!
//! Everything after the bootstrap goes through the SDK over the platform's own
//! REST API, as a domain team's tooling would. Re-running is safe: what exists
//! is kept, the data is regenerated only when the scale factor changes, and the
//! personas' keys are read back from a file only the user can read (a key that
//! no longer works is replaced, and the persona's other demo keys revoked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tessera_catalog::store::NewApiKey;
use tessera_contracts::api::{
    ApiKeyCreate, Attributes, DomainCreate, OutputPort, PrincipalCreate, PrincipalKind, ProductCreate, ProductStatus,
    ProductUpdate, TeamCreate,
};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs;
use tessera_contracts::policy::{
    AttributeKey, ColumnSelector, Exemption, GrantSpec, MaskFunction, MaskSpec, RowFilterSpec, Subject, Target,
};
use tessera_sdk::Client;

use crate::cli::{self, write_private};
use crate::platform::{self, Running, ServeArgs};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// TPC-H scale factor of the generated data (1 is about 1 GB of CSV; 0.1 builds in seconds).
    #[arg(long, value_name = "SF", default_value_t = 0.1)]
    pub scale: f64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Marks the keys the demo issued, so that a re-run revokes only its own.
const KEY_DESCRIPTION: &str = "tessera demo";

struct Persona {
    name: &'static str,
    display: &'static str,
    /// One line on what this persona shows.
    role: &'static str,
    groups: &'static [&'static str],
    regions: &'static [&'static str],
    purposes: &'static [&'static str],
    /// The purpose its connection lines declare.
    purpose: Option<&'static str>,
}

/// The platform admin is the bootstrap principal `admin`.
const ADMIN: &str = "admin";

const PERSONAS: [Persona; 7] = [
    Persona {
        name: ADMIN,
        display: "Platform admin",
        role: "platform admin: manages domains, principals and policies (masked like everyone else)",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "cora",
        display: "Cora (customers domain owner)",
        role: "owns the customers domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "sal",
        display: "Sal (sales domain owner)",
        role: "owns the sales domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "sue",
        display: "Sue (supply domain owner)",
        role: "owns the supply domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "ana",
        display: "Ana (analyst)",
        role: "analyst, purpose analytics: every product, PII hashed, customers of EUROPE and ASIA only",
        groups: &["analysts"],
        regions: &["EUROPE", "ASIA"],
        purposes: &["analytics"],
        purpose: Some("analytics"),
    },
    Persona {
        name: "fred",
        display: "Fred (fraud investigator)",
        role: "fraud investigator, purpose fraud: every product, PII in clear, every region",
        groups: &["investigators"],
        regions: &["AMERICA"],
        purposes: &["fraud"],
        purpose: Some("fraud"),
    },
    Persona {
        name: "nia",
        display: "Nia (new analyst)",
        role: "new analyst, no grant yet: sees the catalog, requests access (`tessera access request`)",
        groups: &[],
        regions: &["EUROPE"],
        purposes: &["analytics"],
        purpose: Some("analytics"),
    },
];

struct DemoDomain {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    team: &'static str,
    owner: &'static str,
}

const DOMAINS: [DemoDomain; 3] = [
    DemoDomain {
        name: "customers",
        title: "Customers",
        description: "Who buys from us, and where they are.",
        team: "customers_team",
        owner: "cora",
    },
    DemoDomain {
        name: "sales",
        title: "Sales",
        description: "Orders and their line items.",
        team: "sales_team",
        owner: "sal",
    },
    DemoDomain {
        name: "supply",
        title: "Supply",
        description: "Parts, suppliers, and who supplies which part at what cost.",
        team: "supply_team",
        owner: "sue",
    },
];

struct DemoProduct {
    domain: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    inputs: &'static [&'static str],
    contract: &'static str,
}

/// In lineage order: a product's inputs come before it.
const PRODUCTS: [DemoProduct; 8] = [
    DemoProduct {
        domain: "customers",
        name: "region",
        title: "Regions",
        description: "The five world regions.",
        inputs: &[],
        contract: include_str!("contracts/customers.region.odcs.yaml"),
    },
    DemoProduct {
        domain: "customers",
        name: "nation",
        title: "Nations",
        description: "The 25 nations we trade with, each in one region.",
        inputs: &["customers.region"],
        contract: include_str!("contracts/customers.nation.odcs.yaml"),
    },
    DemoProduct {
        domain: "customers",
        name: "customer",
        title: "Customers",
        description: "Every customer, with personal data classified pii.",
        inputs: &["customers.nation"],
        contract: include_str!("contracts/customers.customer.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "part",
        title: "Parts",
        description: "The parts we sell.",
        inputs: &[],
        contract: include_str!("contracts/supply.part.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "supplier",
        title: "Suppliers",
        description: "Who supplies us; phone classified pii, balance confidential.",
        inputs: &["customers.nation"],
        contract: include_str!("contracts/supply.supplier.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "partsupp",
        title: "Part suppliers",
        description: "Which supplier supplies which part, at what cost.",
        inputs: &["supply.part", "supply.supplier"],
        contract: include_str!("contracts/supply.partsupp.odcs.yaml"),
    },
    DemoProduct {
        domain: "sales",
        name: "orders",
        title: "Orders",
        description: "Every order placed, one row per order.",
        inputs: &["customers.customer"],
        contract: include_str!("contracts/sales.orders.odcs.yaml"),
    },
    DemoProduct {
        domain: "sales",
        name: "lineitem",
        title: "Line items",
        description: "Every line of every order: what was shipped, when, at what price.",
        inputs: &["sales.orders", "supply.partsupp"],
        contract: include_str!("contracts/sales.lineitem.odcs.yaml"),
    },
];

/// A customer's region from its nation key (TPC-H's fixed nation -> region map).
const REGION_OF_NATION: &str = "CASE WHEN c_nationkey IN (0, 5, 14, 15, 16) THEN 'AFRICA' \
     WHEN c_nationkey IN (1, 2, 3, 17, 24) THEN 'AMERICA' \
     WHEN c_nationkey IN (8, 9, 12, 18, 21) THEN 'ASIA' \
     WHEN c_nationkey IN (6, 7, 19, 22, 23) THEN 'EUROPE' ELSE 'MIDDLE EAST' END";

/// The example policies of design.md.
fn grants() -> Vec<GrantSpec> {
    let group = |value: &str| Subject::Attribute {
        key: AttributeKey::Groups,
        value: value.into(),
    };
    vec![
        GrantSpec {
            name: "analysts_analytics".into(),
            subject: group("analysts"),
            target: Target::All,
            purposes: vec!["analytics".into()],
            expires_at: None,
        },
        GrantSpec {
            name: "investigators_fraud".into(),
            subject: group("investigators"),
            target: Target::All,
            purposes: vec!["fraud".into()],
            expires_at: None,
        },
    ]
}

fn masks() -> Vec<MaskSpec> {
    let fraud = Exemption {
        purposes: vec!["fraud".into()],
        ..Exemption::default()
    };
    vec![
        MaskSpec {
            name: "pii_hashed".into(),
            target: Target::All,
            columns: ColumnSelector::Classification {
                classification: "pii".into(),
            },
            function: MaskFunction::Hash,
            exempt: fraud.clone(),
        },
        MaskSpec {
            name: "confidential_nulled".into(),
            target: Target::All,
            columns: ColumnSelector::Classification {
                classification: "confidential".into(),
            },
            function: MaskFunction::Null,
            exempt: fraud,
        },
        MaskSpec {
            name: "clerk_redacted".into(),
            target: Target::Product {
                domain: "sales".into(),
                product: "orders".into(),
            },
            columns: ColumnSelector::Column {
                column: "o_clerk".into(),
            },
            function: MaskFunction::Redact,
            exempt: Exemption {
                groups: vec!["investigators".into()],
                ..Exemption::default()
            },
        },
    ]
}

fn row_filters() -> Vec<RowFilterSpec> {
    vec![RowFilterSpec {
        name: "customer_regions".into(),
        domain: "customers".into(),
        product: "customer".into(),
        expression: format!("{REGION_OF_NATION} IN (attribute('regions'))"),
        exempt: Exemption {
            purposes: vec!["fraud".into()],
            ..Exemption::default()
        },
    }]
}

/// What the demo keeps in `<data dir>/demo/`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The scale factor the lake was generated at.
    #[serde(default)]
    scale: Option<f64>,
    /// Persona -> API key.
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

impl State {
    fn path(dir: &Path) -> PathBuf {
        dir.join("personas.json")
    }

    fn read(dir: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(Self::path(dir)) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged: delete it to issue new keys", Self::path(dir).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", Self::path(dir).display())),
        }
    }

    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        write_private(&Self::path(dir), serde_json::to_string_pretty(self)?.as_bytes())
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        return Err(cli::Hinted::new(
            format!("scale factor {} is out of range", args.scale),
            "use a scale factor above 0 and at most 100, e.g. --scale 0.1",
        )
        .into());
    }
    let overrides = tessera_catalog::config::Overrides {
        listen: args.serve.listen,
        data_dir: args.serve.data_dir.clone(),
        database_url: args.serve.database_url.clone(),
    };
    let config = tessera_catalog::config::Config::load(args.serve.config.as_deref(), &overrides)
        .context("invalid configuration")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&config.data_dir)?;
    let demo_dir = data_dir.join("demo");
    private_dir(&demo_dir)?;
    let mut state = State::read(&demo_dir)?;
    let lake = data_dir.join("lake");
    let lake_root = lake
        .to_str()
        .context("the data directory's path is not UTF-8")?
        .to_string();

    if state.scale != Some(args.scale) || !lake.join("sales/lineitem/_delta_log").exists() {
        generate(&lake_root, args.scale).await?;
        state.scale = Some(args.scale);
        state.write(&demo_dir)?;
    } else {
        eprintln!("demo data at scale factor {} already in {lake_root}: kept", args.scale);
    }

    let admin_key = state
        .keys
        .get(ADMIN)
        .cloned()
        .unwrap_or_else(|| tessera_catalog::keys::generate().key);
    let running = platform::start(&args.serve, Some(admin_key.clone())).await?;
    let admin_key = ensure_admin_key(&running, admin_key).await?;
    state.keys.insert(ADMIN.into(), admin_key.clone());
    state.write(&demo_dir)?;
    let admin = Client::new(running.url.clone(), &admin_key)?;

    seed(&admin, &lake_root).await?;
    for persona in PERSONAS.iter().filter(|p| p.name != ADMIN) {
        let key = persona_key(&running, &admin, persona.name, state.keys.get(persona.name)).await?;
        state.keys.insert(persona.name.into(), key);
    }
    state.write(&demo_dir)?;
    check_quality(&admin).await?;
    wait_until_served(&running, &state).await?;

    running.print_banner();
    print_personas(&running, &state, &State::path(&demo_dir), args.scale);
    running.wait().await
}

/// Creates `dir` readable by the user only.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    Ok(())
}

/// Writes the eight tables (deterministic: the same scale gives the same rows).
async fn generate(root: &str, scale: f64) -> anyhow::Result<()> {
    let bar = cli::progress(tessera_lake::tpch::MESH.len() as u64, "generating");
    let started = std::time::Instant::now();
    let mut rows = 0;
    for (domain, product) in tessera_lake::tpch::MESH {
        bar.set_message(format!("{domain}.{product}"));
        let data = tokio::task::spawn_blocking(move || tessera_lake::tpch::batches(product, scale)).await??;
        rows += data.iter().map(arrow::array::RecordBatch::num_rows).sum::<usize>();
        let location = format!("{root}/{domain}/{product}");
        tessera_lake::write(
            &location,
            &Default::default(),
            data,
            tessera_lake::WriteMode::Overwrite,
            &[],
        )
        .await
        .with_context(|| format!("cannot write {location}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "generated TPC-H at scale factor {scale}: {rows} rows in 8 Delta tables under {root} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The admin key the demo keeps: the stored one while it works, else a new
/// one for `admin`, written straight into the store (the demo runs in the
/// platform's process, like the bootstrap).
async fn ensure_admin_key(running: &Running, key: String) -> anyhow::Result<String> {
    if let Ok(Some(caller)) = running.catalog.authenticate(&key).await
        && caller.is_admin()
    {
        return Ok(key);
    }
    let fresh = tessera_catalog::keys::generate();
    running
        .catalog
        .store
        .create_api_key(
            "tessera-demo",
            &NewApiKey {
                id: fresh.id,
                principal: ADMIN.into(),
                secret_hash: fresh.secret_hash,
                description: KEY_DESCRIPTION.into(),
                expires_at: None,
            },
        )
        .await
        .context("cannot issue the demo's admin key (is there a principal `admin`?)")?;
    Ok(fresh.key)
}

/// Registers what is missing; what exists is left as it is.
async fn seed(admin: &Client, lake: &str) -> anyhow::Result<()> {
    for p in &PERSONAS {
        if p.name == ADMIN {
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
                    })
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let bar = cli::progress(PRODUCTS.len() as u64, "registering");
    for p in &PRODUCTS {
        bar.set_message(format!("{}.{}", p.domain, p.name));
        register(admin, p, lake)
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
async fn register(admin: &Client, p: &DemoProduct, lake: &str) -> anyhow::Result<()> {
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
                            location: format!("{lake}/{}/{}", p.domain, p.name),
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
async fn persona_key(running: &Running, admin: &Client, name: &str, stored: Option<&String>) -> anyhow::Result<String> {
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
async fn check_quality(admin: &Client) -> anyhow::Result<()> {
    let bar = cli::progress(PRODUCTS.len() as u64, "checking");
    let mut failing = Vec::new();
    for p in &PRODUCTS {
        bar.set_message(format!("{}.{}", p.domain, p.name));
        let product = admin.product(p.domain, p.name).await?.value;
        let contract = odcs::parse(DocumentFormat::Yaml, p.contract).map_err(|e| anyhow::anyhow!("{e}"))?;
        let location = &product
            .output_ports
            .first()
            .context("the product lost its output port")?
            .location;
        let run = tessera_gateway::quality::run(&contract, location, &Default::default(), chrono::Utc::now()).await?;
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

/// Waits until the gateway serves the mesh to the analyst, so that every
/// printed line works the moment it is printed.
async fn wait_until_served(running: &Running, state: &State) -> anyhow::Result<()> {
    let key = state.keys.get("ana").context("no key for ana")?;
    let ana = Client::new(running.url.clone(), key)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match ana
            .query("SELECT count(*) AS n FROM sales.lineitem", Some("analytics"))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(anyhow::Error::from(e).context("the gateway did not pick up the demo mesh within 60 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

const SAMPLE_SQL: &str = "SELECT n_name, count(*) AS customers FROM customers.customer \
     JOIN customers.nation ON c_nationkey = n_nationkey GROUP BY n_name ORDER BY n_name";

fn print_personas(running: &Running, state: &State, keys_file: &Path, scale: f64) {
    let url = &running.url;
    let pg = running.endpoints.pg;
    let flight = running.endpoints.flight;
    println!();
    println!("Tessera demo mesh: 3 domains, 8 products, TPC-H at scale factor {scale}");
    println!("  persona keys: {} (readable by you only)", keys_file.display());
    println!("  sample query: {SAMPLE_SQL}");
    for p in &PERSONAS {
        let Some(key) = state.keys.get(p.name) else { continue };
        println!();
        println!("{}: {}", p.name, p.role);
        let (pg_options, header, flight_header) = match p.purpose {
            Some(purpose) => (
                format!(" options='-c tessera.purpose={purpose}'"),
                format!(" -H 'tessera-purpose: {purpose}'"),
                format!(", tessera-purpose: {purpose}"),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        println!(
            "  psql:   psql \"host={} port={} dbname=tessera user={} password={key}{pg_options}\"",
            pg.ip(),
            pg.port(),
            p.name
        );
        println!(
            "  curl:   curl -s -H 'Authorization: Bearer {key}'{header} -H 'Content-Type: application/json' -d '{{\"sql\": \"{SAMPLE_SQL}\"}}' {url}/api/v1/query"
        );
        println!("  flight: grpc://{flight} (headers: authorization: Bearer {key}{flight_header})");
        println!("  cli:    tessera login --endpoint {url} --key {key}");
    }
    println!();
    println!("Portal (sign in with a key above): {url}/");
    println!("API docs: {url}/api/v1/docs/");
    println!("Stop with Ctrl-C; run `tessera demo` again to come back to the same mesh.");
}
