//! A gateway on loopback over the demo mesh at a small scale factor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_flight::sql::client::FlightSqlServiceClient;
use chrono::Utc;
use futures::TryStreamExt;
use tessera_contracts::api::{Attributes, Visibility};
use tessera_contracts::bundle::{Bundle, BundleContent, BundleKey, BundlePort, BundlePrincipal, BundleProduct};
use tessera_contracts::lifecycle::ProductStatus;
use tessera_contracts::policy::{GrantSpec, Subject, Target};
use tessera_gateway::sync::Offered;
use tessera_gateway::{Engine, Gateway, GatewayConfig, Limits};
use tessera_lake::StorageLocation;

pub const SCALE: f64 = 0.01;
/// The mesh's mask key in the fixture's bundles (a catalog makes a random one).
pub const MASK_KEY: [u8; 32] = *b"a fixture's 32-byte mask key !!!";

/// The fixture's mask key, as bundles carry it.
pub fn mask_key() -> tessera_contracts::bundle::MaskKey {
    tessera_contracts::bundle::MaskKey::from_bytes(MASK_KEY)
}

/// The keyed hash a `hash` mask gives `value` under [`MASK_KEY`], computed here
/// with the HMAC crate: the reference the gateway's masks must equal.
pub fn keyed_hash(value: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&MASK_KEY).expect("any key length");
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A `keyed_hash(text)` SQL function over [`keyed_hash`], for reference sessions.
pub fn keyed_hash_udf() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, StringArray};
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "keyed_hash",
        vec![arrow::datatypes::DataType::Utf8],
        arrow::datatypes::DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let values = datafusion::common::cast::as_string_array(&arrays[0])?;
            let hashed: StringArray = (0..values.len())
                .map(|i| (!values.is_null(i)).then(|| keyed_hash(values.value(i))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(hashed)))
        }),
    )
}
pub const ADMIN_KEY: &str = "tsk_aaaaaaaaaaaa_1111111111111111111111111111111111111111111111111111111111111111";
pub const ANALYST_KEY: &str = "tsk_bbbbbbbbbbbb_2222222222222222222222222222222222222222222222222222222222222222";

pub struct Fixture {
    pub engine: Engine,
    /// Stands in for the catalog: the gateway follows the bundles offered here.
    pub source: Arc<Offered>,
    /// Holds the lake for the fixture's lifetime.
    _dir: tempfile::TempDir,
    /// The lake's storage options (for reading it directly).
    pub options: HashMap<String, String>,
    pub products: Vec<BundleProduct>,
    pub http: SocketAddr,
    pub pg: SocketAddr,
    pub flight: SocketAddr,
}

pub fn principal(name: &str, key: &str, admin: bool) -> BundlePrincipal {
    let parsed = tessera_contracts::keys::parse(key).expect("test key");
    BundlePrincipal {
        name: name.into(),
        admin,
        roles: vec![],
        attributes: Attributes::default(),
        teams: vec![],
        keys: vec![BundleKey {
            id: parsed.id.into(),
            secret_hash: tessera_contracts::keys::hash_secret(parsed.secret),
            expires_at: None,
        }],
    }
}

pub fn product(domain: &str, name: &str, location: &str, visibility: Visibility) -> BundleProduct {
    BundleProduct {
        domain: domain.into(),
        name: name.into(),
        owner_team: format!("{domain}_team"),
        domain_owner_team: format!("{domain}_team"),
        visibility,
        status: ProductStatus::Published,
        sunset_date: None,
        tags: vec![],
        output_ports: vec![BundlePort {
            major_version: 1,
            location: location.into(),
            columns: vec![],
            schema: None,
        }],
    }
}

/// Where the fixture's lake lives: a local directory, or a prefix on the
/// S3-compatible server that `scripts/test` starts.
pub struct Lake {
    pub root: String,
    pub storage: Vec<StorageLocation>,
}

impl Lake {
    pub fn options(&self) -> HashMap<String, String> {
        tessera_lake::storage_options_for(&self.storage, &self.root)
    }

    /// A fresh prefix in the test bucket of the S3-compatible server named by
    /// `TESSERA_TEST_S3_ENDPOINT` (credentials are the server's test ones).
    pub fn s3() -> Self {
        let endpoint = std::env::var("TESSERA_TEST_S3_ENDPOINT")
            .expect("TESSERA_TEST_S3_ENDPOINT names the S3-compatible test server: run scripts/test, which starts one");
        let bucket = std::env::var("TESSERA_TEST_S3_BUCKET").unwrap_or_else(|_| "tessera-test".into());
        let options = HashMap::from(
            [
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let prefix = format!("s3://{bucket}/");
        Self {
            root: format!("{prefix}{}", uuid::Uuid::new_v4()),
            storage: vec![StorageLocation { prefix, options }],
        }
    }
}

impl Fixture {
    pub async fn start(limits: Limits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake {
            root: dir.path().to_str().expect("utf-8").to_string(),
            storage: Vec::new(),
        };
        Self::start_at(limits, dir, lake).await
    }

    pub async fn start_at(limits: Limits, dir: tempfile::TempDir, lake: Lake) -> Self {
        Self::start_scaled(limits, dir, lake, SCALE, 0).await
    }

    /// `staleness_ms`: how old a table snapshot may be (0: every query looks for new commits).
    pub async fn start_scaled(
        limits: Limits,
        dir: tempfile::TempDir,
        lake: Lake,
        scale: f64,
        staleness_ms: u64,
    ) -> Self {
        let config = GatewayConfig {
            limits,
            table_staleness_ms: staleness_ms,
            ..GatewayConfig::default()
        };
        Self::start_configured(config, dir, lake, scale).await
    }

    /// The demo mesh at `scale` in `lake`, served by a gateway configured as
    /// `config` (its storage taken from the lake).
    pub async fn start_configured(config: GatewayConfig, dir: tempfile::TempDir, lake: Lake, scale: f64) -> Self {
        let generated = tessera_testkit::tpch::write_mesh(&lake.root, scale, &lake.options())
            .await
            .expect("demo mesh");
        let products: Vec<BundleProduct> = generated
            .iter()
            .map(|g| product(g.domain, g.product, &g.location, Visibility::Discoverable))
            .collect();
        let options = lake.options();
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = GatewayConfig {
            storage: lake.storage,
            http_listen: loopback,
            pg_listen: loopback,
            flight_listen: loopback,
            data_dir: dir.path().join("gateway"),
            ..config
        };
        let source = Offered::new();
        // Production's start-up: every listener bound up front, the first bundle
        // installed before anything is served.
        let gateway = Gateway::build(config, source.clone()).await.expect("gateway builds");
        let endpoints = gateway.endpoints();
        let mut fixture = Self {
            engine: gateway.engine().clone(),
            source,
            _dir: dir,
            options,
            products: products.clone(),
            http: endpoints.http.expect("an HTTP listener"),
            pg: endpoints.pg,
            flight: endpoints.flight,
        };
        fixture.offer(products, 1);
        tokio::spawn(gateway.run_until(std::future::pending()));
        fixture.installed(1).await;
        fixture
    }

    /// Where `product`'s table is.
    pub fn location(&self, product: &str) -> String {
        self.products
            .iter()
            .find(|p| p.name == product)
            .expect("product")
            .output_ports[0]
            .location
            .clone()
    }

    /// Appends the region rows once more to the region table: a new Delta
    /// version, returned.
    pub async fn append_regions(&self) -> u64 {
        let batches = tessera_testkit::tpch::batches("region", SCALE).expect("rows");
        tessera_lake::write(
            &self.location("region"),
            &self.options,
            batches,
            tessera_lake::WriteMode::Append,
            &[],
        )
        .await
        .expect("appends")
    }

    /// Installs a bundle with the admin, the analyst and `products`; the
    /// analyst holds a grant on each discoverable one.
    pub async fn install(&mut self, products: Vec<BundleProduct>, version: i64) {
        self.offer(products, version);
        self.installed(version).await;
    }

    /// Offers the bundle [`Fixture::install`] installs.
    fn offer(&mut self, products: Vec<BundleProduct>, version: i64) {
        let grants = products
            .iter()
            .filter(|p| p.visibility == Visibility::Discoverable)
            .map(|p| GrantSpec {
                name: format!("ana-{}-{}", p.domain, p.name),
                subject: Subject::Principal { name: "ana".into() },
                target: Target::Product {
                    domain: p.domain.clone(),
                    product: p.name.clone(),
                },
                purposes: vec![],
                expires_at: None,
            })
            .collect();
        let content = BundleContent {
            products,
            principals: vec![
                principal("admin", ADMIN_KEY, true),
                principal("ana", ANALYST_KEY, false),
            ],
            grants,
            mask_key: mask_key(),
            ..BundleContent::default()
        };
        self.offer_content(content, version);
    }

    /// Offers a bundle of `content` to the gateway and waits until it serves it.
    pub async fn install_content(&self, content: BundleContent, version: i64) {
        self.offer_content(content, version);
        self.installed(version).await;
    }

    fn offer_content(&self, mut content: BundleContent, version: i64) {
        content.canonicalize();
        self.source.offer(Bundle::new(version, content, Utc::now()));
    }

    /// Waits until the gateway serves bundle `version` (it follows the source).
    pub async fn installed(&self, version: i64) {
        let mut installed = self.engine.subscribe();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            installed.wait_for(|v| *v >= version),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the gateway did not install bundle {version}: {:?}",
                self.source.last_report()
            )
        })
        .expect("the engine is running");
    }

    /// An in-process session of the key's principal (no purpose).
    pub fn session(&self, key: &str) -> tessera_gateway::Session {
        let principal = self.engine.authenticate(key).expect("a known key");
        self.engine
            .session(&principal, tessera_gateway::Protocol::InProcess, None)
            .expect("session")
    }

    pub async fn pg(&self, key: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(self.pg.ip().to_string())
            .port(self.pg.port())
            .user("tester")
            .dbname("tessera")
            .password(key)
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    pub async fn flight(&self, key: &str) -> FlightSqlServiceClient<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.flight))
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_token(key.to_string());
        client
    }

    pub async fn flight_query(
        &self,
        key: &str,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
        let mut client = self.flight(key).await;
        let info = client.execute(sql.to_string(), None).await?;
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        client.do_get(ticket).await?.try_collect().await
    }

    /// `POST /api/v1/query` asking for an Arrow IPC stream.
    pub async fn http_query(&self, key: &str, sql: &str) -> Result<Vec<RecordBatch>, (u16, serde_json::Value)> {
        self.http_query_for(key, None, sql).await
    }

    /// The same, declaring a purpose.
    pub async fn http_query_for(
        &self,
        key: &str,
        purpose: Option<&str>,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, (u16, serde_json::Value)> {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/api/v1/query", self.http))
            .bearer_auth(key);
        if let Some(purpose) = purpose {
            request = request.header("tessera-purpose", purpose);
        }
        let response = request
            .header("accept", "application/vnd.apache.arrow.stream")
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .await
            .expect("sends");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        if status != 200 {
            return Err((status, serde_json::from_slice(&bytes).expect("problem json")));
        }
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("arrow stream");
        Ok(reader.collect::<Result<Vec<_>, _>>().expect("batches"))
    }
}

/// Rows rendered as text cells, numbers normalised, sorted: comparable across
/// protocols whatever their type mapping and however ties were ordered.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formats"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| normalise(&f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    out.sort();
    out
}

/// Numbers to 6 significant decimals (engines agree on decimals exactly; on
/// floating-point aggregates only up to summation order).
pub fn normalise(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) if cell.contains('.') || cell.contains('e') => format!("{v:.6e}"),
        Ok(v) => format!("{v}"),
        Err(_) => cell.to_string(),
    }
}

pub fn pg_rows(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| normalise(row.get(i).unwrap_or("NULL")))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Raw DataFusion over the same Delta tables: the reference answers.
pub async fn reference(fixture: &Fixture) -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new();
    let catalog = ctx.catalog("datafusion").expect("default catalog");
    for p in &fixture.products {
        if catalog.schema(&p.domain).is_none() {
            catalog
                .register_schema(&p.domain, Arc::new(datafusion::catalog::MemorySchemaProvider::new()))
                .expect("schema");
        }
        let table = tessera_lake::open_table(&p.output_ports[0].location, &fixture.options)
            .await
            .expect("opens")
            .expect("exists");
        let provider = table.table_provider().await.expect("provider");
        ctx.register_table(format!("{}.{}", p.domain, p.name), provider)
            .expect("registers");
    }
    ctx.register_udf(keyed_hash_udf());
    ctx
}
