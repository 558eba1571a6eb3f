//! Untrusted SQL: each hostile or runaway input gets a clear, typed error on
//! every protocol, and a normal query right after succeeds.

use crate::fixture::{ADMIN_KEY, ANALYST_KEY, Fixture, product};
use tessera_contracts::api::Visibility;
use tessera_gateway::{Limits, QueryError};

const NORMAL: &str = "SELECT count(*) AS n FROM customers.nation";

async fn still_serves(fixture: &Fixture) {
    let batches = fixture
        .http_query(ADMIN_KEY, NORMAL)
        .await
        .expect("a normal query right after");
    assert_eq!(crate::fixture::rows(&batches), vec![vec!["25".to_string()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_is_refused_with_clear_errors() {
    let fixture = Fixture::start(Limits {
        query_timeout_ms: 3_000,
        ..Limits::default()
    })
    .await;
    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    // A cartesian product over lineitem: its count is known from the tables'
    // statistics, so it is answered at once rather than run.
    let cartesian = fixture
        .http_query(
            ADMIN_KEY,
            "SELECT count(*) FROM sales.lineitem a, sales.lineitem b, sales.lineitem c",
        )
        .await
        .expect("answered from statistics");
    assert_eq!(
        crate::fixture::rows(&cartesian),
        vec![vec![(60_175u128.pow(3)).to_string()]]
    );
    let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let chain = format!("SELECT {} AS n", vec!["1"; 10_000].join(" + "));
    let in_list = format!(
        "SELECT count(*) FROM sales.orders WHERE o_orderkey IN ({})",
        (0..30_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let cases: Vec<(&str, String, &str, u16)> = vec![
        ("drop", "DROP TABLE sales.orders".into(), "42501", 403),
        ("insert", "INSERT INTO sales.orders VALUES (1)".into(), "42501", 403),
        ("delete", "DELETE FROM sales.orders".into(), "42501", 403),
        ("create", "CREATE TABLE x AS SELECT 1".into(), "42501", 403),
        (
            "external table",
            "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".into(),
            "42501",
            403,
        ),
        ("copy", "COPY (SELECT 1) TO '/tmp/x.csv'".into(), "42501", 403),
        (
            "set",
            "SET datafusion.execution.target_partitions = 1".into(),
            "42501",
            403,
        ),
        ("file table", "SELECT * FROM '/etc/passwd'".into(), "42P01", 404),
        (
            "file function",
            "SELECT * FROM read_csv('/etc/passwd')".into(),
            "42883",
            404,
        ),
        (
            "runaway series",
            "SELECT * FROM generate_series(1, 1000000000000)".into(),
            "42883",
            404,
        ),
        (
            "two statements",
            "SELECT 1; DROP TABLE sales.orders".into(),
            "42501",
            403,
        ),
        ("deep nesting", deep, "42601", 400),
        // Flat for the parser, 10,000 levels deep for the planner.
        ("10,000-term chain", chain.clone(), "54001", 400),
        ("huge IN list", in_list, "54001", 400),
        ("unknown table", "SELECT * FROM sales.nope".into(), "42P01", 404),
        (
            "runaway join",
            "SELECT count(*) FROM sales.lineitem a JOIN sales.lineitem b ON a.l_suppkey = b.l_suppkey \
             JOIN sales.lineitem c ON b.l_suppkey = c.l_suppkey"
                .into(),
            "57014",
            504,
        ),
    ];
    for (what, sql, sqlstate, status) in &cases {
        let (got_status, problem) = fixture
            .http_query(ADMIN_KEY, sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: HTTP accepted it"));
        assert_eq!(got_status, *status, "{what}: HTTP status {problem}");
        assert_eq!(problem["sqlstate"], *sqlstate, "{what}: HTTP problem {problem}");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:tessera:problem:")),
            "{what}: {problem}"
        );

        let error = pg
            .simple_query(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: PG accepted it"));
        let code = error.code().map(|c| c.code().to_string());
        // PostgreSQL's own grammar has no CREATE EXTERNAL TABLE: over the wire it
        // is a syntax error before it is anything else.
        let accepted: &[&str] = if *what == "external table" {
            &["42501", "42601"]
        } else {
            &[sqlstate]
        };
        assert!(
            code.as_deref().is_some_and(|c| accepted.contains(&c)),
            "{what}: PG error {error:?}"
        );

        let flight = fixture
            .flight_query(ADMIN_KEY, sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: Flight accepted it"));
        assert!(flight.to_string().contains(sqlstate), "{what}: Flight error {flight}");

        still_serves(&fixture).await;
        assert_eq!(
            pg.simple_query(NORMAL).await.expect("PG still serves").len(),
            3,
            "{what}"
        );
    }

    // An IN list within its bound runs.
    let within = format!(
        "SELECT count(*) FROM sales.orders WHERE o_orderkey IN ({})",
        (0..5_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let batches = fixture.http_query(ADMIN_KEY, &within).await.expect("runs");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);

    // Over PostgreSQL wire, statements are measured before datafusion-postgres
    // parses (and plans) them: in a Parse message too.
    let error = pg.query(chain.as_str(), &[]).await.expect_err("extended protocol");
    assert_eq!(error.code().map(|c| c.code()), Some("54001"), "{error}");

    // Text over the limit is refused before parsing, on every protocol.
    let huge = format!("SELECT 1 -- {}", "x".repeat(300 * 1024));
    let (status, problem) = fixture.http_query(ADMIN_KEY, &huge).await.expect_err("too long");
    assert_eq!((status, problem["sqlstate"].as_str()), (413, Some("54000")));
    let huge_comment = format!("SELECT 1 /* {} */", "x".repeat(1024 * 1024));
    for error in [
        pg.simple_query(&huge_comment).await.expect_err("simple protocol"),
        pg.prepare(&huge_comment).await.expect_err("extended protocol"),
    ] {
        assert_eq!(error.code().map(|c| c.code()), Some("54000"), "{error}");
    }
    let error = fixture.flight_query(ADMIN_KEY, &huge).await.expect_err("Flight");
    assert!(error.to_string().contains("54000"), "{error}");
    still_serves(&fixture).await;

    // Wrong credentials, on every protocol.
    let wrong = "tsk_cccccccccccc_3333333333333333333333333333333333333333333333333333333333333333";
    let (status, problem) = fixture.http_query(wrong, NORMAL).await.expect_err("wrong key");
    assert_eq!((status, problem["sqlstate"].as_str()), (401, Some("28P01")));
    let Err(error) = fixture.pg(wrong).await else {
        panic!("PG accepted a wrong key")
    };
    assert_eq!(error.code().map(|c| c.code()), Some("28P01"), "{error}");
    let error = fixture
        .flight_query(wrong, NORMAL)
        .await
        .expect_err("Flight refuses the key");
    assert!(error.to_string().contains("28P01"), "{error}");
    still_serves(&fixture).await;

    // Harmless session statements that tools send are answered.
    for sql in [
        "SET application_name = 'psql'",
        "SET extra_float_digits = 3",
        "SHOW server_version",
    ] {
        pg.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_memory_limit_fails_and_others_run() {
    let fixture = Fixture::start(Limits {
        query_memory_bytes: 2 << 20,
        query_spill_bytes: 0,
        ..Limits::default()
    })
    .await;
    let (status, problem) = fixture
        .http_query(
            ADMIN_KEY,
            "SELECT l_orderkey, l_comment, row_number() OVER (ORDER BY l_comment) FROM sales.lineitem ORDER BY l_comment DESC",
        )
        .await
        .expect_err("over its memory");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (422, Some("53200")),
        "{problem}"
    );
    still_serves(&fixture).await;
}

/// Functions that build large values from small arguments are capped at an
/// eighth of the query's memory (here 8 MiB of 64): the same answers below
/// the cap, the pool's error above it, before anything is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_value_functions_are_capped_by_the_query_memory() {
    let fixture = Fixture::start(Limits {
        query_memory_bytes: 64 << 20,
        ..Limits::default()
    })
    .await;
    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    for (sql, expected) in [
        ("SELECT length(repeat('ab', 1000)) AS n", "2000"),
        ("SELECT length(lpad('x', 100, 'yz')) AS n", "100"),
        ("SELECT length(concat(repeat('a', 10), 'b', NULL)) AS n", "11"),
        ("SELECT cardinality(range(1, 1001)) AS n", "1000"),
        ("SELECT cardinality(array_repeat(7, 50)) AS n", "50"),
        (
            "SELECT count(*) AS n FROM (SELECT unnest(generate_series(1, 100000)) AS i) t",
            "100000",
        ),
        ("SELECT length(replace(repeat('a', 100), 'a', 'bb')) AS n", "200"),
    ] {
        let batches = fixture
            .http_query(ADMIN_KEY, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(
            crate::fixture::rows(&batches),
            vec![vec![expected.to_string()]],
            "{sql}"
        );
    }
    for sql in [
        "SELECT length(repeat('x', 1000000000)) AS n",
        "SELECT length(rpad('x', 2000000000)) AS n",
        "SELECT length(concat_ws(repeat('-', 5000000), 'a', 'b', 'c')) AS n",
        "SELECT count(*) AS n FROM (SELECT unnest(range(1, 200000000)) AS i) t",
        "SELECT cardinality(array_repeat('x', 100000000)) AS n",
        "SELECT length(regexp_replace(repeat('a', 1000000), 'a', repeat('b', 100), 'g')) AS n",
        // Per row of a batch: 8,192 rows of 10 KB each are 80 MB.
        "SELECT max(length(repeat('x', 10000 + i))) AS n FROM (SELECT unnest(range(1, 8193)) AS i) t",
    ] {
        let (status, problem) = fixture.http_query(ADMIN_KEY, sql).await.expect_err(sql);
        assert_eq!(
            (status, problem["sqlstate"].as_str()),
            (422, Some("53200")),
            "{sql}: {problem}"
        );
        let error = pg.simple_query(sql).await.expect_err(sql);
        assert_eq!(error.code().map(|c| c.code()), Some("53200"), "{sql}: {error}");
    }
    still_serves(&fixture).await;
}

/// One principal holds at most its share of the execution slots: another
/// user's query finds a slot while the first one's long queries run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_take_every_slot() {
    let fixture = Fixture::start(Limits {
        max_concurrent_queries: 4,
        max_queued_queries: 16,
        queue_timeout_ms: 300,
        ..Limits::default()
    })
    .await;
    let session = fixture.session(ADMIN_KEY);
    // Results being read hold their slots: the admin's share is 3 of 4.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(session.sql("SELECT * FROM sales.lineitem").await.expect("runs"));
    }
    let error = session.sql(NORMAL).await.expect_err("over the admin's share");
    assert_eq!(error.sqlstate(), "53300", "{error}");
    assert_eq!(fixture.engine.admission().0, 3);
    // The analyst still gets the fourth slot.
    fixture
        .http_query(ANALYST_KEY, "SELECT 1 AS one")
        .await
        .expect("another user is served");
    drop(held);
    still_serves(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_caps_and_concurrency_limits_give_typed_errors() {
    let fixture = Fixture::start(Limits {
        max_result_rows: 1_000,
        ..Limits::default()
    })
    .await;
    let error = fixture
        .session(ADMIN_KEY)
        .sql("SELECT * FROM sales.lineitem")
        .await
        .expect("starts")
        .collect()
        .await
        .expect_err("over the row cap");
    assert_eq!(error, QueryError::TooManyRows { max: 1_000 });
    still_serves(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_appear_and_disappear_with_the_bundle() {
    let mut fixture = Fixture::start(Limits::default()).await;
    // A connection opened before the changes follows them too.
    let early = fixture.pg(ANALYST_KEY).await.expect("connects");
    let location = fixture.products[0].output_ports[0].location.clone();
    let mut products = fixture.products.clone();
    products.push(product("marketing", "leads", &location, Visibility::Discoverable));
    fixture.install(products.clone(), 2).await;
    let batches = fixture
        .http_query(ANALYST_KEY, "SELECT count(*) FROM marketing.leads")
        .await
        .expect("registered: queryable without a restart");
    assert_eq!(crate::fixture::rows(&batches), vec![vec!["1500".to_string()]]);
    let counted = early
        .simple_query("SELECT count(*) FROM marketing.leads")
        .await
        .expect("appears over PG");
    assert_eq!(crate::fixture::pg_rows(&counted), vec![vec!["1500".to_string()]]);

    // Restricted: the analyst's session has no such table ("not found", never "forbidden").
    products.last_mut().expect("leads").visibility = Visibility::Restricted;
    fixture.install(products.clone(), 3).await;
    let (status, problem) = fixture
        .http_query(ANALYST_KEY, "SELECT count(*) FROM marketing.leads")
        .await
        .expect_err("restricted");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (404, Some("42P01")),
        "{problem}"
    );
    assert!(
        fixture
            .http_query(ADMIN_KEY, "SELECT count(*) FROM marketing.leads")
            .await
            .is_ok()
    );
    let error = early
        .simple_query("SELECT count(*) FROM marketing.leads")
        .await
        .expect_err("gone over PG");
    assert_eq!(
        error.code().map(|c| c.code()),
        Some("42P01"),
        "the open connection follows the bundle"
    );

    // Retired: gone for everyone.
    products.last_mut().expect("leads").status = tessera_contracts::lifecycle::ProductStatus::Retired;
    fixture.install(products, 4).await;
    let (status, _) = fixture
        .http_query(ADMIN_KEY, "SELECT count(*) FROM marketing.leads")
        .await
        .expect_err("retired");
    assert_eq!(status, 404);
    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    let error = pg
        .simple_query("SELECT * FROM marketing.leads")
        .await
        .expect_err("retired");
    assert_eq!(error.code().map(|c| c.code()), Some("42P01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_reads_an_earlier_delta_version() {
    let fixture = Fixture::start(Limits::default()).await;
    let version = fixture.append_regions().await;
    let count = |batches: Vec<arrow::array::RecordBatch>| crate::fixture::rows(&batches)[0][0].clone();
    let now = fixture
        .http_query(ADMIN_KEY, "SELECT count(*) FROM customers.region")
        .await
        .expect("latest");
    assert_eq!(count(now), "10", "new commits are visible within the staleness bound");
    let before = fixture
        .http_query(
            ADMIN_KEY,
            &format!("SELECT count(*) FROM customers.\"region@v{}\"", version - 1),
        )
        .await
        .expect("time travel");
    assert_eq!(count(before), "5");
    let (status, _) = fixture
        .http_query(ADMIN_KEY, "SELECT count(*) FROM customers.\"region@v99\"")
        .await
        .expect_err("no such version");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_gateway_queues_briefly_then_answers_busy() {
    let fixture = Fixture::start(Limits {
        max_concurrent_queries: 1,
        max_queued_queries: 1,
        queue_timeout_ms: 300,
        ..Limits::default()
    })
    .await;
    let session = fixture.session(ADMIN_KEY);
    // A result being read holds the only slot.
    let held = session.sql("SELECT * FROM sales.lineitem").await.expect("runs");

    let started = std::time::Instant::now();
    let (status, problem) = fixture.http_query(ADMIN_KEY, NORMAL).await.expect_err("busy");
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (429, Some("53300")),
        "{problem}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "it queued first"
    );
    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    let error = pg.simple_query(NORMAL).await.expect_err("busy over PG too");
    assert_eq!(error.code().map(|c| c.code()), Some("53300"));

    // A query queued while the slot frees up runs.
    let waiting = {
        let session = session.clone();
        tokio::spawn(async move { session.sql(NORMAL).await.map(|_| ()) })
    };
    let queued = std::time::Instant::now();
    while fixture.engine.admission().1 == 0 {
        assert!(
            queued.elapsed() < std::time::Duration::from_secs(10),
            "the query never queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    drop(held);
    waiting.await.expect("joins").expect("ran once the slot was free");
    still_serves(&fixture).await;
}

/// Sessions and their compiled policies go with their bundle: with
/// PostgreSQL connections and a Flight SQL client open and HTTP queries
/// running across 30 bundle changes, the sessions alive stay as many as
/// before (each bundle change used to keep every PostgreSQL connection's
/// previous session alive, about 10 MB each, through a cycle between its
/// catalog and its `pg_catalog`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_do_not_outlive_their_bundle() {
    use futures::TryStreamExt;
    let mut fixture = Fixture::start(Limits::default()).await;
    let products = fixture.products.clone();
    let pgs = [
        fixture.pg(ADMIN_KEY).await.expect("admin connects"),
        fixture.pg(ANALYST_KEY).await.expect("analyst connects"),
    ];
    let mut flight = fixture.flight(ADMIN_KEY).await;
    let round = async |fixture: &Fixture, flight: &mut arrow_flight::sql::client::FlightSqlServiceClient<_>| {
        for pg in &pgs {
            pg.simple_query("SELECT 1 AS one").await.expect("PG");
        }
        let info = flight.execute(NORMAL.to_string(), None).await.expect("Flight");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<arrow::array::RecordBatch> = flight
            .do_get(ticket)
            .await
            .expect("ticket")
            .try_collect()
            .await
            .expect("rows");
        assert_eq!(crate::fixture::rows(&batches), vec![vec!["25".to_string()]]);
        still_serves(fixture).await;
    };
    // Each bundle differs from the last (a tag), as a policy change would.
    let changed = |version: i64| {
        let mut products = products.clone();
        products[0].tags = vec![format!("change_{version}")];
        products
    };
    // Warm up: every connection has its session of the bundle in force.
    fixture.install(changed(2), 2).await;
    round(&fixture, &mut flight).await;
    let before = tessera_gateway::tables::live_sessions();
    for version in 3..=32 {
        fixture.install(changed(version), version).await;
        round(&fixture, &mut flight).await;
    }
    let after = tessera_gateway::tables::live_sessions();
    assert!(
        after <= before,
        "{before} sessions alive before 30 bundle changes, {after} after: sessions outlive their bundle"
    );
}
