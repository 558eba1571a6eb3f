//! Governance, adversarially: over HTTP, PostgreSQL wire and Flight SQL, a
//! governed product must answer every probe exactly as a copy of its data that
//! holds only the visible rows, already masked, would. The copy is made here
//! with plain DataFusion SQL over the raw Delta tables, without gateway code;
//! any difference in rows, in errors or in counts is a leak.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use tessera_contracts::api::Attributes;
use tessera_contracts::bundle::{BundleContent, BundleProduct};
use tessera_contracts::policy::{
    AttributeKey, ColumnSelector, Exemption, GrantSpec, MaskFunction, MaskSpec, PolicyColumn, RowFilterSpec, Subject,
    Target,
};
use tessera_gateway::Limits;

use crate::fixture::{ADMIN_KEY, ANALYST_KEY, Fixture, Lake, pg_rows, principal, rows};

pub const FRED_KEY: &str = "tsk_cccccccccccc_3333333333333333333333333333333333333333333333333333333333333333";
pub const SAM_KEY: &str = "tsk_dddddddddddd_4444444444444444444444444444444444444444444444444444444444444444";

/// The demo mesh small enough for thousands of queries.
pub const GOVERNED_SCALE: f64 = 0.001;

/// Who queries, and with which declared purpose.
#[derive(Debug, Clone, Copy)]
pub struct Persona {
    pub name: &'static str,
    pub key: &'static str,
    pub purpose: Option<&'static str>,
}

/// An analyst of EUROPE and ASIA, for analytics.
pub const ANA: Persona = Persona {
    name: "ana",
    key: ANALYST_KEY,
    purpose: Some("analytics"),
};
/// A fraud investigator of AMERICA, who may see PII for fraud.
pub const FRED: Persona = Persona {
    name: "fred",
    key: FRED_KEY,
    purpose: Some("fraud"),
};

/// The region of each TPC-H nation, as a row filter spells it.
const REGION_OF_NATION: &str = "CASE WHEN c_nationkey IN (0, 5, 14, 15, 16) THEN 'AFRICA' \
     WHEN c_nationkey IN (1, 2, 3, 17, 24) THEN 'AMERICA' \
     WHEN c_nationkey IN (8, 9, 12, 18, 21) THEN 'ASIA' \
     WHEN c_nationkey IN (6, 7, 19, 22, 23) THEN 'EUROPE' ELSE 'MIDDLE EAST' END";

/// The policies of the demo mesh (design.md): PII hashed but for fraud,
/// customers by the analyst's regions, clerks redacted, supplier balances
/// nulled but for investigators, supplier phones cut to their last 4 digits.
pub async fn governed_content(fixture: &Fixture) -> BundleContent {
    let pii = ["c_name", "c_address", "c_phone"];
    let mut products: Vec<BundleProduct> = Vec::new();
    for p in &fixture.products {
        let mut p = p.clone();
        let meta = tessera_lake::table_meta(&p.output_ports[0].location, &fixture.options)
            .await
            .expect("meta")
            .expect("table");
        p.output_ports[0].columns = meta
            .schema
            .fields()
            .iter()
            .map(|f| PolicyColumn {
                name: f.name().clone(),
                classification: pii.contains(&f.name().as_str()).then(|| "pii".to_string()),
            })
            .collect();
        products.push(p);
    }
    let mut ana = principal("ana", ANALYST_KEY, false);
    ana.attributes = Attributes {
        groups: vec!["analysts".into()],
        regions: vec!["EUROPE".into(), "ASIA".into()],
        purposes: vec!["analytics".into()],
    };
    let mut fred = principal("fred", FRED_KEY, false);
    fred.attributes = Attributes {
        groups: vec!["analysts".into(), "investigators".into()],
        regions: vec!["AMERICA".into()],
        purposes: vec!["fraud".into()],
    };
    let grants = ["customers", "sales", "supply"]
        .into_iter()
        .map(|d| GrantSpec {
            name: format!("analysts-{d}"),
            subject: Subject::Attribute {
                key: AttributeKey::Groups,
                value: "analysts".into(),
            },
            target: Target::Domain { domain: d.into() },
            purposes: vec![],
            expires_at: None,
        })
        .collect();
    let product = |domain: &str, product: &str| Target::Product {
        domain: domain.into(),
        product: product.into(),
    };
    let masks = vec![
        MaskSpec {
            name: "pii".into(),
            target: Target::All,
            columns: ColumnSelector::Classification {
                classification: "pii".into(),
            },
            function: MaskFunction::Hash,
            exempt: Exemption {
                purposes: vec!["fraud".into()],
                ..Exemption::default()
            },
        },
        MaskSpec {
            name: "clerk".into(),
            target: product("sales", "orders"),
            columns: ColumnSelector::Column {
                column: "o_clerk".into(),
            },
            function: MaskFunction::Redact,
            exempt: Exemption::default(),
        },
        MaskSpec {
            name: "supplier-balance".into(),
            target: product("supply", "supplier"),
            columns: ColumnSelector::Column {
                column: "s_acctbal".into(),
            },
            function: MaskFunction::Null,
            exempt: Exemption {
                groups: vec!["investigators".into()],
                ..Exemption::default()
            },
        },
        MaskSpec {
            name: "supplier-phone".into(),
            target: product("supply", "supplier"),
            columns: ColumnSelector::Column {
                column: "s_phone".into(),
            },
            function: MaskFunction::Partial { keep: 4 },
            exempt: Exemption {
                purposes: vec!["fraud".into()],
                ..Exemption::default()
            },
        },
    ];
    let row_filters = vec![
        RowFilterSpec {
            name: "customer-regions".into(),
            domain: "customers".into(),
            product: "customer".into(),
            expression: format!("{REGION_OF_NATION} IN (attribute('regions'))"),
            exempt: Exemption::default(),
        },
        RowFilterSpec {
            name: "recent-orders".into(),
            domain: "sales".into(),
            product: "orders".into(),
            expression: "o_orderdate >= DATE '1994-01-01'".into(),
            exempt: Exemption {
                groups: vec!["investigators".into()],
                ..Exemption::default()
            },
        },
        RowFilterSpec {
            name: "supplier-nations".into(),
            domain: "supply".into(),
            product: "supplier".into(),
            expression: "s_nationkey < 15".into(),
            exempt: Exemption::default(),
        },
    ];
    BundleContent {
        products,
        principals: vec![
            principal("admin", ADMIN_KEY, true),
            ana,
            fred,
            principal("sam", SAM_KEY, false),
        ],
        grants,
        masks,
        row_filters,
        mask_key: crate::fixture::mask_key(),
        issuers: vec![],
    }
}

/// A gateway over the small demo mesh with the demo's policies.
pub async fn governed_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake {
        root: dir.path().to_str().expect("utf-8").to_string(),
        storage: Vec::new(),
    };
    // The tables do not change: snapshots are reused (as in serving) for speed.
    let fixture = Fixture::start_scaled(Limits::default(), dir, lake, GOVERNED_SCALE, 60_000).await;
    let content = governed_content(&fixture).await;
    fixture.install_content(content, 2).await;
    fixture
}

/// What `persona` may see, computed from the raw tables with plain DataFusion:
/// the reference a governed gateway must be indistinguishable from.
pub async fn visible_copy(fixture: &Fixture, persona: Persona) -> SessionContext {
    let raw = crate::fixture::reference(fixture).await;
    // The mask is keyed: the reference computes it with the key the bundle carries.
    let hash = |c: &str| format!("keyed_hash(CAST({c} AS VARCHAR)) AS {c}");
    let fraud = persona.purpose == Some("fraud");
    let investigator = persona.name == "fred";
    let nations = if investigator {
        "1, 2, 3, 17, 24"
    } else {
        "6, 7, 19, 22, 23, 8, 9, 12, 18, 21"
    };
    let customer = if fraud {
        format!("SELECT * FROM customers.customer WHERE c_nationkey IN ({nations})")
    } else {
        format!(
            "SELECT c_custkey, {}, {}, c_nationkey, {}, c_acctbal, c_mktsegment, c_comment \
             FROM customers.customer WHERE c_nationkey IN ({nations})",
            hash("c_name"),
            hash("c_address"),
            hash("c_phone")
        )
    };
    let orders_filter = if investigator {
        ""
    } else {
        "WHERE o_orderdate >= DATE '1994-01-01'"
    };
    let orders = format!(
        "SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice, o_orderdate, o_orderpriority, \
         CAST('***' AS VARCHAR) AS o_clerk, o_shippriority, o_comment FROM sales.orders {orders_filter}"
    );
    let balance = if investigator {
        "s_acctbal"
    } else {
        "CAST(NULL AS DECIMAL(15, 2)) AS s_acctbal"
    };
    let phone = if fraud {
        "s_phone"
    } else {
        "right(s_phone, 4) AS s_phone"
    };
    let supplier = format!(
        "SELECT s_suppkey, s_name, s_address, s_nationkey, {phone}, {balance}, s_comment \
         FROM supply.supplier WHERE s_nationkey < 15"
    );
    // The gateway's dialect, so that both sides read the SQL alike.
    let config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(2)
        .with_default_catalog_and_schema("tessera", "public")
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
    let copy = SessionContext::new_with_config(config);
    let catalog = copy.catalog("tessera").expect("catalog");
    for p in &fixture.products {
        if catalog.schema(&p.domain).is_none() {
            catalog
                .register_schema(&p.domain, Arc::new(datafusion::catalog::MemorySchemaProvider::new()))
                .expect("schema");
        }
        let name = format!("{}.{}", p.domain, p.name);
        let sql = match name.as_str() {
            "customers.customer" => customer.clone(),
            "sales.orders" => orders.clone(),
            "supply.supplier" => supplier.clone(),
            _ => format!("SELECT * FROM {name}"),
        };
        let frame = raw.sql(&sql).await.expect("copy query");
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.expect("copied");
        let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).expect("table");
        copy.register_table(name, Arc::new(table)).expect("registers");
    }
    copy
}

/// An answer, comparable across engines and protocols: rows, or the kind of error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Rows(Vec<Vec<String>>),
    Error(&'static str),
}

impl Answer {
    pub fn has_rows(&self) -> bool {
        matches!(self, Self::Rows(r) if !r.is_empty())
    }
}

/// The kind of an error, from its message: what an oracle could tell apart.
pub fn error_kind(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("divide by zero") || m.contains("division by zero") {
        "division by zero"
    } else if m.contains("cast") || m.contains("parse") || m.contains("invalid digit") {
        "cast"
    } else if m.contains("regex") {
        "regex"
    } else if m.contains("is not queryable for you") {
        "not allowed"
    } else if m.contains("not found") || m.contains("does not exist") || m.contains("no field named") {
        "not found"
    } else if m.contains("overflow") {
        "overflow"
    } else {
        "other"
    }
}

pub async fn reference_answer(copy: &SessionContext, sql: &str) -> Answer {
    let result = match copy.sql(sql).await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(batches) => Answer::Rows(rows(&batches)),
        Err(e) => Answer::Error(error_kind(&e.to_string())),
    }
}

/// The gateway's answer through one protocol.
pub async fn gateway_answer(fixture: &Fixture, protocol: &str, persona: Persona, sql: &str) -> Answer {
    match protocol {
        "http" => match fixture.http_query_for(persona.key, persona.purpose, sql).await {
            Ok(batches) => Answer::Rows(rows(&batches)),
            Err((_, problem)) => {
                if std::env::var("TESSERA_DEBUG_ANSWERS").is_ok() {
                    eprintln!("{sql}: {problem}");
                }
                Answer::Error(error_kind(problem["detail"].as_str().unwrap_or_default()))
            }
        },
        "postgres" => {
            let client = pg_as(fixture, persona).await;
            match client.simple_query(sql).await {
                Ok(messages) => Answer::Rows(pg_rows(&messages)),
                Err(e) => Answer::Error(error_kind(
                    &e.as_db_error().map_or(e.to_string(), |d| d.message().to_string()),
                )),
            }
        }
        "flight" => {
            let mut client = flight_as(fixture, persona).await;
            match flight_rows(&mut client, sql).await {
                Ok(batches) => Answer::Rows(rows(&batches)),
                Err(e) => Answer::Error(error_kind(&e)),
            }
        }
        other => panic!("no protocol {other}"),
    }
}

pub async fn pg_as(fixture: &Fixture, persona: Persona) -> tokio_postgres::Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host(fixture.pg.ip().to_string())
        .port(fixture.pg.port())
        .user(persona.name)
        .dbname("tessera")
        .password(persona.key);
    if let Some(purpose) = persona.purpose {
        config.options(format!("-c tessera.purpose={purpose}"));
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connects");
    tokio::spawn(connection);
    client
}

pub async fn flight_as(fixture: &Fixture, persona: Persona) -> FlightSqlServiceClient<tonic::transport::Channel> {
    let mut client = fixture.flight(persona.key).await;
    if let Some(purpose) = persona.purpose {
        client.set_header("tessera-purpose", purpose);
    }
    client
}

async fn flight_rows(
    client: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, String> {
    let info = client.execute(sql.to_string(), None).await.map_err(|e| e.to_string())?;
    let ticket = info.endpoint[0].ticket.clone().ok_or("no ticket")?;
    client
        .do_get(ticket)
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())
}

/// Probes meant to tell hidden rows and raw values apart, each an attack seen in
/// the wild on row-level security: error oracles, predicates, joins and their
/// dynamic filters, subqueries, set operations, windows, aggregates (also those
/// an engine answers from file statistics), TopK, time travel, name tricks.
const PROBES: &[&str] = &[
    "SELECT * FROM customers.customer",
    "SELECT count(*) FROM customers.customer",
    "SELECT min(c_custkey), max(c_custkey), min(c_phone), max(c_name), min(c_nationkey), max(c_nationkey) FROM customers.customer",
    "SELECT count(*) FROM customers.customer WHERE 1 / (c_nationkey - 10) = 1",
    "SELECT sum(1 / (c_nationkey - 4)) FROM customers.customer",
    "SELECT c_custkey FROM customers.customer WHERE CAST(c_nationkey AS VARCHAR) = '10'",
    "SELECT count(*) FROM customers.customer WHERE CAST(substr(c_phone, 1, 2) AS INT) > 0",
    "SELECT count(*) FROM customers.customer WHERE CAST(c_name AS INT) > 0",
    "SELECT count(*) FROM customers.customer WHERE c_phone LIKE '20-%'",
    "SELECT count(*) FROM customers.customer WHERE regexp_like(c_name, '^Customer#0+1')",
    "SELECT count(*) FROM customers.customer WHERE c_name ~ 'Customer'",
    "SELECT c_nationkey, count(*) FROM customers.customer GROUP BY c_nationkey",
    "SELECT c_phone, count(*) FROM customers.customer GROUP BY c_phone HAVING count(*) > 0",
    "SELECT n.n_name, count(*) FROM customers.customer c JOIN customers.nation n ON c.c_nationkey = n.n_nationkey GROUP BY n.n_name",
    "SELECT count(*), sum(o.o_totalprice) FROM sales.orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey",
    "SELECT count(*) FROM sales.orders o WHERE EXISTS (SELECT 1 FROM customers.customer c WHERE c.c_custkey = o.o_custkey AND c.c_nationkey = 10)",
    "SELECT count(*) FROM sales.orders o WHERE o.o_custkey IN (SELECT c.c_custkey FROM customers.customer c WHERE c.c_nationkey = 4)",
    "SELECT count(*) FROM customers.customer WHERE c_phone IN ('20-908-631-4424', '14-199-862-7209', '***')",
    "SELECT count(*) FROM customers.customer WHERE c_phone IN (SELECT s_phone FROM supply.supplier)",
    "WITH hidden AS (SELECT c_custkey, c_phone FROM customers.customer WHERE c_nationkey = 10) SELECT count(*) FROM hidden",
    "SELECT c_phone FROM customers.customer UNION SELECT s_phone FROM supply.supplier",
    "SELECT c_nationkey FROM customers.customer INTERSECT SELECT n_nationkey FROM customers.nation WHERE n_regionkey = 4",
    "SELECT n_nationkey FROM customers.nation EXCEPT SELECT c_nationkey FROM customers.customer",
    "SELECT count(*) FROM customers.customer a JOIN customers.customer b ON a.c_phone = b.c_phone AND a.c_custkey <> b.c_custkey",
    "SELECT c_custkey, row_number() OVER (PARTITION BY c_nationkey ORDER BY c_custkey) AS rn, count(*) OVER (PARTITION BY c_nationkey) AS n FROM customers.customer",
    "SELECT c_custkey, lag(c_phone) OVER (ORDER BY c_custkey) AS prev FROM customers.customer",
    "SELECT o_clerk, count(*) FROM sales.orders GROUP BY o_clerk",
    "SELECT min(o_orderdate), max(o_orderdate), count(*) FROM sales.orders",
    "SELECT * FROM sales.orders ORDER BY o_orderdate, o_orderkey LIMIT 5",
    "SELECT c_custkey FROM customers.customer ORDER BY c_phone, c_custkey LIMIT 3",
    "SELECT s_suppkey, s_phone, s_acctbal FROM supply.supplier",
    "SELECT count(*) FROM supply.supplier WHERE s_acctbal > 0",
    "SELECT count(*) FROM supply.supplier WHERE 100 / (s_nationkey - 20) > 0",
    "SELECT (SELECT max(c_acctbal) FROM customers.customer) AS m",
    "SELECT count(*) FROM customers.customer c JOIN (VALUES ('***'), ('25-989-741-2988')) AS v(p) ON c.c_phone = v.p",
    "SELECT count(*) FROM \"customers\".\"customer\"",
    "SELECT count(*) FROM CUSTOMERS.CUSTOMER",
    "SELECT count(*) FROM tessera.customers.customer",
    "SELECT count(*), max(c_phone) FROM customers.\"customer@v0\"",
    "SELECT count(*) FROM customers.customer WHERE c_nationkey = 10 OR c_custkey < 0",
    "SELECT count(DISTINCT c_nationkey) FROM customers.customer",
    "SELECT avg(c_acctbal) FROM customers.customer WHERE c_mktsegment = 'BUILDING'",
];

fn time_travel_in_reference(sql: &str) -> String {
    sql.replace("customers.\"customer@v0\"", "customers.customer")
}

/// Every probe, as the analyst and as the investigator, on every protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_probe_tells_a_governed_product_from_its_visible_copy() {
    let fixture = governed_fixture().await;
    let mut checked = 0;
    for persona in [ANA, FRED] {
        let copy = visible_copy(&fixture, persona).await;
        for sql in PROBES {
            let expected = reference_answer(&copy, &time_travel_in_reference(sql)).await;
            for protocol in ["http", "postgres", "flight"] {
                let got = gateway_answer(&fixture, protocol, persona, sql).await;
                assert_eq!(got, expected, "{} over {protocol}: {sql}", persona.name);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, PROBES.len() * 6);
}

/// The investigator without a purpose, or the analyst declaring one she may
/// not: no exemption by purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purposes_count_only_when_declared_and_entitled() {
    let fixture = governed_fixture().await;
    let sql = "SELECT c_custkey, c_phone FROM customers.customer";
    let fred_plain = Persona { purpose: None, ..FRED };
    let ana_fraud = Persona {
        purpose: Some("fraud"),
        ..ANA
    };
    for (persona, as_if) in [(fred_plain, fred_plain), (ana_fraud, Persona { purpose: None, ..ANA })] {
        let copy = visible_copy(&fixture, as_if).await;
        let expected = reference_answer(&copy, sql).await;
        for protocol in ["http", "postgres", "flight"] {
            assert_eq!(
                gateway_answer(&fixture, protocol, persona, sql).await,
                expected,
                "{persona:?} {protocol}"
            );
        }
    }
    // With the purpose, fred sees phones in clear; SET changes it mid-connection.
    let pg = pg_as(&fixture, FRED).await;
    let clear = pg_rows(&pg.simple_query(sql).await.expect("runs"));
    assert!(clear.iter().all(|r| r[1].contains('-')), "raw phones for fraud");
    pg.simple_query("SET tessera.purpose = 'analytics'")
        .await
        .expect("sets");
    let hashed = pg_rows(&pg.simple_query(sql).await.expect("runs"));
    assert!(
        hashed.iter().all(|r| r[1].len() == 64),
        "hashed once the purpose is gone"
    );
    // A statement prepared under one purpose runs under the purpose in force.
    pg.simple_query("SET tessera.purpose = 'fraud'").await.expect("sets");
    let statement = pg.prepare(sql).await.expect("prepares");
    pg.simple_query("SET tessera.purpose = DEFAULT").await.expect("sets");
    let rows = pg.query(&statement, &[]).await.expect("runs");
    assert!(
        rows.iter().all(|r| r.get::<_, String>(1).len() == 64),
        "re-planned under the new purpose"
    );
}

/// Products without a grant are listed nowhere in SQL; querying a discoverable
/// one (which the catalog shows to everyone) says it is not granted and how to
/// ask, on every protocol. (Restricted products stay "not found": see the
/// seams tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grant_nothing_is_listed_and_querying_says_how_to_ask() {
    let fixture = governed_fixture().await;
    let sam = Persona {
        name: "sam",
        key: SAM_KEY,
        purpose: None,
    };
    for protocol in ["http", "postgres", "flight"] {
        let listed = gateway_answer(
            &fixture,
            protocol,
            sam,
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog')",
        )
        .await;
        assert_eq!(listed, Answer::Rows(vec![]), "{protocol}");
        let real = gateway_answer(&fixture, protocol, sam, "SELECT * FROM customers.customer").await;
        let fake = gateway_answer(&fixture, protocol, sam, "SELECT * FROM customers.nosuch").await;
        assert_eq!(real, Answer::Error("not allowed"), "{protocol}");
        assert_eq!(fake, Answer::Error("not found"), "{protocol}");
    }
    // pg_catalog and Flight SQL's GetTables are per principal too.
    let pg_class = "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'customer'";
    let sam_pg = pg_as(&fixture, sam).await;
    assert!(pg_rows(&sam_pg.simple_query(pg_class).await.expect("runs")).is_empty());
    let ana_pg = pg_as(&fixture, ANA).await;
    assert_eq!(
        pg_rows(&ana_pg.simple_query(pg_class).await.expect("runs")),
        [["customer"]]
    );
    for (persona, expected) in [(sam, 0), (ANA, 3)] {
        let mut client = flight_as(&fixture, persona).await;
        let info = client
            .get_tables(arrow_flight::sql::CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: Some("customers".into()),
                table_name_filter_pattern: None,
                table_types: vec![],
                include_schema: false,
            })
            .await
            .expect("tables");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<RecordBatch> = client
            .do_get(ticket)
            .await
            .expect("streams")
            .try_collect()
            .await
            .expect("batches");
        let tables: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(
            tables, expected,
            "{} lists {tables} tables over Flight SQL",
            persona.name
        );
    }
    crate::seams::assert_not_granted(&fixture, SAM_KEY, "customers.customer").await;
}

/// EXPLAIN shows the barrier and nothing below it; EXPLAIN ANALYZE is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_hides_the_policy_and_explain_analyze_is_refused() {
    let fixture = governed_fixture().await;
    for verbose in ["", "VERBOSE "] {
        let sql = format!("EXPLAIN {verbose}SELECT c_custkey FROM customers.customer WHERE c_custkey > 5");
        let text = rows(&fixture.http_query_for(ANALYST_KEY, None, &sql).await.expect("explains"))
            .concat()
            .join("\n");
        assert!(text.contains("PolicyBarrierExec"), "{text}");
        for secret in [
            "EUROPE",
            "attribute",
            "c_nationkey",
            "sha256",
            "DataSourceExec",
            "DeltaScan",
            "ParquetExec",
        ] {
            assert!(!text.contains(secret), "EXPLAIN {verbose}shows {secret:?}:\n{text}");
        }
    }
    let sql = "EXPLAIN ANALYZE SELECT count(*) FROM customers.customer";
    let (status, problem) = fixture.http_query(ANALYST_KEY, sql).await.expect_err("refused");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (403, Some("42501")),
        "{problem}"
    );
    let pg = pg_as(&fixture, ANA).await;
    let e = pg.simple_query(sql).await.expect_err("refused");
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let mut flight = flight_as(&fixture, ANA).await;
    let e = flight_rows(&mut flight, sql).await.expect_err("refused");
    assert!(e.contains("PermissionDenied") || e.contains("permission"), "{e}");
    // Over ungoverned products, EXPLAIN ANALYZE works.
    let ok = fixture
        .http_query(ANALYST_KEY, "EXPLAIN ANALYZE SELECT count(*) FROM customers.nation")
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

/// A Flight SQL prepared statement made by one principal and executed by
/// another answers for the one executing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_answer_for_whoever_runs_them() {
    let fixture = governed_fixture().await;
    let sql = "SELECT count(*), max(c_phone) FROM customers.customer";
    let mut fred = flight_as(&fixture, FRED).await;
    let mut prepared = fred.prepare(sql.to_string(), None).await.expect("prepares");
    let info = prepared.execute().await.expect("executes");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut ana = flight_as(&fixture, ANA).await;
    let batches: Vec<RecordBatch> = ana
        .do_get(ticket)
        .await
        .expect("streams")
        .try_collect()
        .await
        .expect("rows");
    let copy = visible_copy(&fixture, ANA).await;
    assert_eq!(Answer::Rows(rows(&batches)), reference_answer(&copy, sql).await);
}

/// A bundle whose row filter names a column its product lacks is refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_does_not_compile_is_refused_and_the_previous_one_stays() {
    let fixture = governed_fixture().await;
    let mut content = governed_content(&fixture).await;
    content.row_filters[0].expression = "c_region IN (attribute('regions'))".into();
    content.canonicalize();
    let bundle = tessera_contracts::bundle::Bundle::new(3, content, chrono::Utc::now());
    let error = fixture.engine.install(bundle).expect_err("refused");
    assert!(error.to_string().contains("c_region"), "{error}");
    assert_eq!(fixture.engine.bundle_version(), 2);
    let copy = visible_copy(&fixture, ANA).await;
    let sql = "SELECT count(*) FROM customers.customer";
    assert_eq!(
        gateway_answer(&fixture, "http", ANA, sql).await,
        reference_answer(&copy, sql).await
    );
}

/// A bundle that does not compile is NACKed with its error and the previous
/// one stays; a good one is ACKed and saved, and a new engine restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_are_acked_or_nacked_and_the_good_ones_kept_on_disk() {
    use tessera_contracts::bundle::Bundle;
    use tessera_gateway::sync::{Link, Refresh, Store};

    let fixture = governed_fixture().await;
    let mut broken = governed_content(&fixture).await;
    broken.row_filters[0].expression = "c_region IN (attribute('regions'))".into();
    broken.canonicalize();
    // A stand-in for the catalog that can offer any bundle, including one the
    // real catalog never produces (it checks row filters when they are written).
    let offer = tessera_gateway::sync::Offered::new();
    offer.offer(Bundle::new(3, broken, chrono::Utc::now()));
    let saved = tempfile::tempdir().expect("tempdir");
    let link = Link {
        engine: fixture.engine.clone(),
        source: offer.clone(),
        name: "edge".into(),
        store: Some(Store::new(saved.path())),
    };
    let refused = link.refresh().await.expect("the catalog answered");
    assert!(
        matches!(&refused, Refresh::Refused(e) if e.contains("c_region")),
        "{refused:?}"
    );
    assert_eq!(fixture.engine.bundle_version(), 2, "the previous bundle stays");
    let nack = offer.last_report().expect("reported");
    assert_eq!((nack.version, nack.rejected_version), (2, Some(3)));
    assert!(
        nack.error.as_deref().is_some_and(|e| e.contains("c_region")),
        "{nack:?}"
    );

    let mut good = governed_content(&fixture).await;
    good.masks.retain(|m| m.name != "clerk");
    good.canonicalize();
    offer.offer(Bundle::new(4, good, chrono::Utc::now()));
    assert_eq!(link.refresh().await.expect("answered"), Refresh::Installed(4));
    let ack = offer.last_report().expect("reported");
    assert_eq!((ack.version, ack.rejected_version), (4, None));
    assert_eq!(link.refresh().await.expect("answered"), Refresh::Unchanged);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(saved.path().join("bundle.json"))
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the bundle holds key hashes and the mask key");
    }

    let config = tessera_gateway::GatewayConfig {
        max_staleness_ms: Some(60_000),
        ..tessera_gateway::GatewayConfig::default()
    };
    let restarted = tessera_gateway::Engine::new(&config).expect("engine");
    assert_eq!(Store::new(saved.path()).restore(&restarted).expect("restores"), Some(4));
    assert_eq!(restarted.bundle_version(), 4);
    let principal = restarted.authenticate(ANALYST_KEY).expect("keys come with the bundle");
    assert!(
        restarted
            .session(&principal, tessera_gateway::Protocol::InProcess, None)
            .is_ok(),
        "fresh enough to serve"
    );
    let strict = tessera_gateway::GatewayConfig {
        max_staleness_ms: Some(0),
        ..tessera_gateway::GatewayConfig::default()
    };
    let stale = tessera_gateway::Engine::new(&strict).expect("engine");
    Store::new(saved.path()).restore(&stale).expect("restores");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let error = stale
        .session(&principal, tessera_gateway::Protocol::InProcess, None)
        .expect_err("stale");
    assert_eq!(error.sqlstate(), "57P03", "{error}");
}

/// A source answering a bundle of a format this gateway does not know.
struct Future;

#[async_trait::async_trait]
impl tessera_gateway::sync::BundleSource for Future {
    async fn wait(&self, after: i64) -> Result<i64, tessera_gateway::sync::SyncError> {
        Ok(after)
    }
    async fn fetch(
        &self,
        _held: Option<&str>,
    ) -> Result<tessera_gateway::sync::Fetched, tessera_gateway::sync::SyncError> {
        let newer = serde_json::json!({"format": 99, "version": 7, "content": {"anything": ["at all"]}});
        Ok(tessera_gateway::sync::Fetched::from_json(
            &serde_json::to_vec(&newer).expect("json"),
        ))
    }
    async fn report(
        &self,
        _gateway: &str,
        report: &tessera_contracts::api::GatewayReport,
    ) -> Result<(), tessera_gateway::sync::SyncError> {
        assert_eq!(report.rejected_version, Some(7), "{report:?}");
        assert!(
            report.error.as_deref().is_some_and(|e| e.contains("format 99")),
            "{report:?}"
        );
        Ok(())
    }
    async fn audit(&self, _: &tessera_contracts::api::AuditBatch) -> Result<(), tessera_gateway::sync::SyncError> {
        Ok(())
    }
}

/// A bundle of a newer format is refused and reported (NACK), not misread,
/// and the bundle in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_of_another_format_is_nacked() {
    let fixture = governed_fixture().await;
    let link = tessera_gateway::sync::Link {
        engine: fixture.engine.clone(),
        source: Arc::new(Future),
        name: "edge".into(),
        store: None,
    };
    let refused = link.refresh().await.expect("answered");
    assert!(
        matches!(&refused, tessera_gateway::sync::Refresh::Refused(e) if e.contains("format 99")),
        "{refused:?}"
    );
    assert_eq!(fixture.engine.bundle_version(), 2, "the previous bundle stays");
}
