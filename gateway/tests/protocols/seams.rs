//! Governance at the platform's seams (issue #16), on every protocol: keyed
//! hash masks, the contract as the served schema (drift), sessions that live
//! only as long as their credentials, policies that say what they did, and
//! errors and EXPLAIN without storage paths.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::Utc;
use futures::TryStreamExt;
use tessera_contracts::api::{Drift, Visibility};
use tessera_contracts::bundle::BundleContent;
use tessera_contracts::odcs::SchemaObject;
use tessera_contracts::odcs::arrow::property_from_field;
use tessera_contracts::policy::{GrantSpec, Subject, Target};
use tessera_gateway::Limits;

use crate::fixture::{ADMIN_KEY, ANALYST_KEY, Fixture, keyed_hash, mask_key, pg_rows, principal, product, rows};
use crate::governance::{ANA, gateway_answer, governed_fixture, pg_as};

/// A HMAC of a raw customer name is what ana sees; the plain SHA-256 a
/// dictionary would try matches nothing, on any protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_masks_are_keyed_so_a_dictionary_matches_nothing() {
    let fixture = governed_fixture().await;
    let dictionary = "SELECT count(*) FROM customers.customer \
        WHERE c_name = encode(sha256('Customer#' || lpad(CAST(c_custkey AS VARCHAR), 9, '0')), 'hex')";
    let visible = "SELECT count(*) FROM customers.customer";
    for protocol in ["http", "postgres", "flight"] {
        let matched = gateway_answer(&fixture, protocol, ANA, dictionary).await;
        assert_eq!(
            matched,
            crate::governance::Answer::Rows(vec![vec!["0".into()]]),
            "{protocol}"
        );
        let all = gateway_answer(&fixture, protocol, ANA, visible).await;
        assert_ne!(
            all, matched,
            "{protocol}: ana sees customers, none of which the dictionary finds"
        );
    }
    // What ana reads is the keyed hash of the raw value.
    let sql = "SELECT c_name FROM customers.customer WHERE c_custkey = (SELECT min(c_custkey) FROM customers.customer)";
    let masked = rows(
        &fixture
            .http_query_for(ANALYST_KEY, Some("analytics"), sql)
            .await
            .expect("runs"),
    );
    let custkey = rows(
        &fixture
            .http_query_for(
                ANALYST_KEY,
                Some("analytics"),
                "SELECT min(c_custkey) FROM customers.customer",
            )
            .await
            .expect("runs"),
    );
    let raw = format!("Customer#{:09}", custkey[0][0].parse::<u64>().expect("a key"));
    assert_eq!(masked, vec![vec![keyed_hash(&raw)]]);
}

/// The contract of region as its table is now: its columns, types and nullability.
fn contract_of(schema: &Schema) -> SchemaObject {
    SchemaObject {
        name: "region".into(),
        physical_name: Some("region".into()),
        properties: Some(schema.fields().iter().map(|f| property_from_field(f)).collect()),
        ..SchemaObject::default()
    }
}

/// A bundle with the fixture's products, region served through `contract`,
/// ana granted everything (as [`Fixture::install`] does).
fn with_region_contract(fixture: &Fixture, contract: &SchemaObject) -> BundleContent {
    let mut products = fixture.products.clone();
    for p in &mut products {
        if p.name == "region" {
            p.output_ports[0].schema = Some(contract.clone());
        }
    }
    BundleContent {
        grants: vec![GrantSpec {
            name: "ana-all".into(),
            subject: Subject::Principal { name: "ana".into() },
            target: Target::All,
            purposes: vec![],
            expires_at: None,
        }],
        products,
        principals: vec![
            principal("admin", ADMIN_KEY, true),
            principal("ana", ANALYST_KEY, false),
        ],
        mask_key: mask_key(),
        ..BundleContent::default()
    }
}

/// Writes `batch` to the region table as another writer would (delta-rs with
/// the schema merged or overwritten); returns the new version.
async fn foreign_write(fixture: &Fixture, batch: RecordBatch, mode: deltalake::operations::write::SchemaMode) -> u64 {
    let table = tessera_lake::open_table(&fixture.location("region"), &fixture.options)
        .await
        .expect("opens")
        .expect("exists");
    let save = match mode {
        deltalake::operations::write::SchemaMode::Overwrite => deltalake::protocol::SaveMode::Overwrite,
        _ => deltalake::protocol::SaveMode::Append,
    };
    let table = table
        .write(vec![batch])
        .with_save_mode(save)
        .with_schema_mode(mode)
        .await
        .expect("written");
    table.version().expect("a version") as u64
}

fn region_rows(extra: Option<&str>, comment: bool) -> RecordBatch {
    let mut fields = vec![
        Field::new("r_regionkey", DataType::Int64, false),
        Field::new("r_name", DataType::Utf8, false),
    ];
    let mut columns: Vec<Arc<dyn arrow::array::Array>> = vec![
        Arc::new(Int64Array::from(vec![7, 8])),
        Arc::new(StringArray::from(vec!["ATLANTIS", "LEMURIA"])),
    ];
    if comment {
        fields.push(Field::new("r_comment", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from(vec!["sunk", "lost"])));
    }
    if let Some(extra) = extra {
        fields.push(Field::new(extra, DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from(vec![Some(1), Some(2)])));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
}

/// Waits until the gateway's reports to the catalog carry `check`'s drift.
async fn reported(fixture: &Fixture, check: impl Fn(&[Drift]) -> bool) -> Vec<Drift> {
    let started = std::time::Instant::now();
    loop {
        let drift = fixture.source.last_report().map(|r| r.drift).unwrap_or_default();
        if check(&drift) {
            return drift;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not reported: {drift:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_table_is_served_only_through_its_contract() {
    let fixture = Fixture::start(Limits::default()).await;
    let location = fixture.location("region");
    let meta = tessera_lake::table_meta(&location, &fixture.options)
        .await
        .expect("meta")
        .expect("table");
    let contract = contract_of(&meta.schema);
    fixture
        .install_content(with_region_contract(&fixture, &contract), 2)
        .await;
    let columns = |batches: &[RecordBatch]| -> Vec<String> {
        batches[0].schema().fields().iter().map(|f| f.name().clone()).collect()
    };
    let served = ["r_regionkey", "r_name", "r_comment"];

    // Another writer adds a column: it is not served, on any protocol.
    let merged = foreign_write(
        &fixture,
        region_rows(Some("r_secret"), true),
        deltalake::operations::write::SchemaMode::Merge,
    )
    .await;
    let http = fixture
        .http_query(ANALYST_KEY, "SELECT * FROM customers.region")
        .await
        .expect("served");
    assert_eq!(columns(&http), served);
    assert_eq!(
        http.iter().map(RecordBatch::num_rows).sum::<usize>(),
        7,
        "the new rows are served"
    );
    let pg = fixture.pg(ANALYST_KEY).await.expect("connects");
    let described = pg.prepare("SELECT * FROM customers.region").await.expect("prepares");
    let names: Vec<&str> = described.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, served);
    let flight = fixture
        .flight_query(ANALYST_KEY, "SELECT * FROM customers.region")
        .await
        .expect("served");
    assert_eq!(columns(&flight), served);
    for sql in [
        "SELECT r_secret FROM customers.region",
        "SELECT count(*) FROM customers.region WHERE r_secret > 0",
    ] {
        let (status, problem) = fixture.http_query(ANALYST_KEY, sql).await.expect_err("not served");
        assert_eq!(
            (status, problem["sqlstate"].as_str()),
            (404, Some("42703")),
            "{problem}"
        );
    }
    let drift = reported(&fixture, |d| d.iter().any(|d| d.product == "region")).await;
    assert_eq!(drift[0].table_version, merged);
    assert_eq!(drift[0].serving_version, None, "an added column blocks nothing");
    assert!(
        drift[0]
            .mismatches
            .iter()
            .any(|m| m.rule == "extra-column" && m.path.contains("r_secret")),
        "{drift:?}"
    );

    // Another writer drops a contract column: the last version that matched answers.
    let dropped = foreign_write(
        &fixture,
        region_rows(None, false),
        deltalake::operations::write::SchemaMode::Overwrite,
    )
    .await;
    let answer = rows(
        &fixture
            .http_query(ANALYST_KEY, "SELECT count(*), count(r_comment) FROM customers.region")
            .await
            .expect("served from the last matching version"),
    );
    assert_eq!(answer, vec![vec!["7".to_string(), "7".to_string()]]);
    let drift = reported(&fixture, |d| d.iter().any(|d| d.table_version == dropped)).await;
    assert_eq!(drift[0].serving_version, Some(merged));
    assert!(
        drift[0].mismatches.iter().any(|m| m.rule == "missing-column"),
        "{drift:?}"
    );
    let travel = format!("SELECT * FROM customers.\"region@v{dropped}\"");
    let (status, problem) = fixture.http_query(ANALYST_KEY, &travel).await.expect_err("refused");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (409, Some("55000")),
        "{problem}"
    );
    let error = pg.simple_query(&travel).await.expect_err("refused over PG");
    assert_eq!(error.code().map(|c| c.code()), Some("55000"));

    // The table matches again: no drift is reported.
    foreign_write(
        &fixture,
        region_rows(None, true),
        deltalake::operations::write::SchemaMode::Overwrite,
    )
    .await;
    let answer = rows(
        &fixture
            .http_query(ANALYST_KEY, "SELECT count(*) FROM customers.region")
            .await
            .expect("served"),
    );
    assert_eq!(answer, vec![vec!["2".to_string()]]);
    reported(&fixture, <[Drift]>::is_empty).await;
}

/// The gRPC code of a Flight SQL client's error.
fn flight_code(error: &arrow_flight::error::FlightError) -> tonic::Code {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other}"),
    }
}

const EVE_KEY: &str = "tsk_eeeeeeeeeeee_5555555555555555555555555555555555555555555555555555555555555555";
const GIL_KEY: &str = "tsk_ffffffffffff_6666666666666666666666666666666666666666666666666666666666666666";

/// An expired key or grant stops working on an open PostgreSQL connection and
/// on an open Flight SQL client at once, with the error a new session gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_and_grants_stop_working_on_open_sessions() {
    let fixture = Fixture::start(Limits::default()).await;
    let expiry = Utc::now() + chrono::Duration::seconds(3);
    let mut eve = principal("eve", EVE_KEY, false);
    eve.keys[0].expires_at = Some(expiry);
    let gil = principal("gil", GIL_KEY, false);
    let grant = |name: &str, who: &str, expires_at| GrantSpec {
        name: name.into(),
        subject: Subject::Principal { name: who.into() },
        target: Target::All,
        purposes: vec![],
        expires_at,
    };
    fixture
        .install_content(
            BundleContent {
                products: fixture.products.clone(),
                principals: vec![principal("admin", ADMIN_KEY, true), eve, gil],
                grants: vec![grant("eve-all", "eve", None), grant("gil-all", "gil", Some(expiry))],
                mask_key: mask_key(),
                ..BundleContent::default()
            },
            2,
        )
        .await;
    let sql = "SELECT count(*) FROM customers.region";
    let eve_pg = fixture.pg(EVE_KEY).await.expect("connects");
    let gil_pg = fixture.pg(GIL_KEY).await.expect("connects");
    let mut eve_flight = fixture.flight(EVE_KEY).await;
    let mut gil_flight = fixture.flight(GIL_KEY).await;
    for pg in [&eve_pg, &gil_pg] {
        assert_eq!(pg_rows(&pg.simple_query(sql).await.expect("runs")), [["5"]]);
    }
    for flight in [&mut eve_flight, &mut gil_flight] {
        flight.execute(sql.to_string(), None).await.expect("plans");
    }
    let wait = (expiry - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;

    let error = eve_pg.simple_query(sql).await.expect_err("the key expired");
    assert_eq!(error.code().map(|c| c.code()), Some("28P01"), "{error}");
    let error = eve_flight
        .execute(sql.to_string(), None)
        .await
        .expect_err("the key expired");
    assert_eq!(flight_code(&error), tonic::Code::Unauthenticated, "{error}");
    let error = gil_pg.simple_query(sql).await.expect_err("the grant expired");
    assert_eq!(error.code().map(|c| c.code()), Some("42501"), "{error}");
    let error = gil_flight
        .execute(sql.to_string(), None)
        .await
        .expect_err("the grant expired");
    assert_eq!(flight_code(&error), tonic::Code::PermissionDenied, "{error}");
    // Exactly as a new connection is treated.
    assert!(fixture.pg(EVE_KEY).await.is_err(), "a new connection is refused too");
    let fresh = fixture.pg(GIL_KEY).await.expect("connects");
    let error = fresh.simple_query(sql).await.expect_err("no grant");
    assert_eq!(error.code().map(|c| c.code()), Some("42501"));
}

/// Row filters and masks that applied are said, without hidden data, on all
/// three protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_say_what_they_did() {
    let fixture = governed_fixture().await;
    let sql = "SELECT c_name, c_acctbal FROM customers.customer ORDER BY c_custkey LIMIT 3";
    // Sorted, as the notices are compared.
    let expected = [
        "mask pii applied to customers.customer (c_name)",
        "row filter customer-regions applied to customers.customer",
    ];

    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/query", fixture.http))
        .bearer_auth(ANALYST_KEY)
        .header("tessera-purpose", "analytics")
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await
        .expect("sends");
    let mut notices: Vec<String> = response
        .headers()
        .get_all("tessera-notice")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    notices.sort();
    assert_eq!(notices, expected);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["notices"].as_array().map(Vec::len), Some(2), "{body}");

    // PostgreSQL: NOTICE messages before the rows.
    let mut config = tokio_postgres::Config::new();
    config
        .host(fixture.pg.ip().to_string())
        .port(fixture.pg.port())
        .user("ana")
        .dbname("tessera")
        .password(ANALYST_KEY)
        .options("-c tessera.purpose=analytics");
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await.expect("connects");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                let _ = tx.send(notice.message().to_string());
            }
        }
    });
    for run in ["simple", "extended"] {
        if run == "simple" {
            client.simple_query(sql).await.expect("runs");
        } else {
            client.query(sql, &[]).await.expect("runs");
        }
        let mut got = vec![rx.recv().await.expect("a notice"), rx.recv().await.expect("a notice")];
        got.sort();
        assert_eq!(got, expected, "{run} protocol");
    }

    // Flight SQL: response metadata of the stream.
    let mut flight = crate::governance::flight_as(&fixture, ANA).await;
    let info = flight.execute(sql.to_string(), None).await.expect("plans");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let stream = flight.do_get(ticket).await.expect("streams");
    let mut notices: Vec<String> = stream
        .headers()
        .get_all("tessera-notice")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    notices.sort();
    assert_eq!(notices, expected);
    let _: Vec<RecordBatch> = stream.try_collect().await.expect("rows");

    // An unfiltered, unmasked read says nothing.
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/query", fixture.http))
        .bearer_auth(ANALYST_KEY)
        .header("tessera-purpose", "analytics")
        .json(&serde_json::json!({ "sql": "SELECT count(*) FROM customers.nation" }))
        .send()
        .await
        .expect("sends");
    assert!(response.headers().get("tessera-notice").is_none());
}

/// Neither errors nor EXPLAIN show a non-admin where the lake is; the version
/// of a time travel out of range or missing is a typed error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_explain_show_no_storage_path_to_analysts() {
    let fixture = governed_fixture().await;
    let lake = fixture.location("nation");
    let root = lake.trim_end_matches("/customers/nation").trim_start_matches("file://");
    let root = root.trim_start_matches('/');
    let explain = "EXPLAIN SELECT * FROM customers.nation WHERE n_nationkey > 3";
    let text = rows(
        &fixture
            .http_query_for(ANALYST_KEY, Some("analytics"), explain)
            .await
            .expect("explains"),
    )
    .concat()
    .join("\n");
    assert!(!text.contains(root), "EXPLAIN shows the lake to ana:\n{text}");
    assert!(text.contains("customers.nation"), "{text}");
    let admin = rows(&fixture.http_query(ADMIN_KEY, explain).await.expect("explains"))
        .concat()
        .join("\n");
    assert!(admin.contains(root), "admins see where tables are:\n{admin}");

    let ana = pg_as(&fixture, ANA).await;
    for (sql, state, status) in [
        ("SELECT * FROM customers.\"nation@v18446744073709551615\"", "22003", 400),
        (
            "SELECT * FROM customers.\"nation@v99999999999999999999999\"",
            "22003",
            400,
        ),
        ("SELECT * FROM customers.\"nation@v9999\"", "42P01", 404),
    ] {
        let (code, problem) = fixture
            .http_query_for(ANALYST_KEY, Some("analytics"), sql)
            .await
            .expect_err("refused");
        assert_eq!((code, problem["sqlstate"].as_str()), (status, Some(state)), "{problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains(root), "{detail}");
        assert!(detail.contains("version"), "{detail}");
        let error = ana.simple_query(sql).await.expect_err("refused over PG");
        let db = error.as_db_error().expect("a database error");
        assert_eq!(db.code().code(), state);
        assert!(!db.message().contains(root), "{}", db.message());
    }
}

/// Querying `product` as `key` is refused over HTTP as not granted (403,
/// SQLSTATE 42501), saying how to request access.
pub async fn assert_not_granted(fixture: &Fixture, key: &str, product: &str) {
    let (status, problem) = fixture
        .http_query(key, &format!("SELECT * FROM {product}"))
        .await
        .expect_err("not granted");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (403, Some("42501")),
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("tessera access request {product}")),
        "{detail}"
    );
}

/// A product a principal sees in the catalog but may not query says so, and
/// how to ask; a restricted one does not exist for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visible_but_not_granted_says_how_to_ask() {
    let fixture = Fixture::start(Limits::default()).await;
    let mut products = fixture.products.clone();
    let location = fixture.location("region");
    products.push(product(
        "hr",
        "salaries",
        &format!("{location}_elsewhere"),
        Visibility::Restricted,
    ));
    let nia = "tsk_abcabcabcabc_7777777777777777777777777777777777777777777777777777777777777777";
    let mut content = BundleContent {
        products,
        principals: vec![principal("admin", ADMIN_KEY, true), principal("nia", nia, false)],
        grants: vec![GrantSpec {
            name: "nia-fraud-sales".into(),
            subject: Subject::Principal { name: "nia".into() },
            target: Target::Domain { domain: "sales".into() },
            purposes: vec!["fraud".into()],
            expires_at: None,
        }],
        mask_key: mask_key(),
        ..BundleContent::default()
    };
    content.principals[1].attributes.purposes = vec!["fraud".into()];
    fixture.install_content(content, 2).await;

    // No grant at all: 42501, with the way to request access.
    assert_not_granted(&fixture, nia, "customers.region").await;
    // A grant for a purpose not declared: say to declare it.
    let (status, problem) = fixture
        .http_query(nia, "SELECT * FROM sales.orders")
        .await
        .expect_err("purpose missing");
    assert_eq!(status, 403);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("fraud") && detail.contains("purpose"), "{detail}");
    assert!(
        fixture
            .http_query_for(nia, Some("fraud"), "SELECT count(*) FROM sales.orders")
            .await
            .is_ok(),
        "with the purpose it answers"
    );
    let pg = fixture.pg(nia).await.expect("connects");
    let error = pg
        .simple_query("SELECT * FROM customers.region")
        .await
        .expect_err("not granted");
    assert_eq!(error.code().map(|c| c.code()), Some("42501"));
    let flight = fixture
        .flight_query(nia, "SELECT * FROM customers.region")
        .await
        .expect_err("not granted");
    assert_eq!(flight_code(&flight), tonic::Code::PermissionDenied, "{flight}");
    // Restricted: exactly as a product that does not exist.
    let (status, real) = fixture
        .http_query(nia, "SELECT * FROM hr.salaries")
        .await
        .expect_err("hidden");
    let (_, fake) = fixture
        .http_query(nia, "SELECT * FROM hr.nosuch")
        .await
        .expect_err("missing");
    assert_eq!(status, 404);
    assert_eq!(real["sqlstate"], fake["sqlstate"]);
    assert_eq!(
        real["detail"].as_str().map(|d| d.replace("salaries", "X")),
        fake["detail"].as_str().map(|d| d.replace("nosuch", "X"))
    );
    // Not listed either.
    let listed = rows(
        &fixture
            .http_query(
                nia,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'customers'",
            )
            .await
            .expect("lists"),
    );
    assert!(listed.is_empty(), "{listed:?}");
}
