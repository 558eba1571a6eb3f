//! Acceleration: hot tables answered from memory, never for a version they
//! were not copied from, within one memory budget.

use std::time::{Duration, Instant};

use tessera_gateway::{AcceleratedTable, Acceleration, CopyState, GatewayConfig};

use crate::fixture::{ADMIN_KEY, Fixture, Lake, SCALE, reference, rows};

async fn accelerated_fixture(memory_bytes: u64) -> Fixture {
    accelerated_fixture_evicting(memory_bytes, 0).await
}

/// `evict_idle_ms`: how long a copy must go unread before another may evict it.
async fn accelerated_fixture_evicting(memory_bytes: u64, evict_idle_ms: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake {
        root: dir.path().to_str().expect("utf-8").to_string(),
        storage: Vec::new(),
    };
    let config = GatewayConfig {
        // Every query looks for new commits: a commit is seen at once.
        table_staleness_ms: 0,
        acceleration: Acceleration {
            memory_bytes,
            hot_after: 1,
            evict_idle_ms,
        },
        ..GatewayConfig::default()
    };
    Fixture::start_configured(config, dir, lake, SCALE).await
}

/// The admin's rows for `sql`, in process.
async fn query(fixture: &Fixture, sql: &str) -> Vec<Vec<String>> {
    let session = fixture.session(ADMIN_KEY);
    let batches = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows(&batches)
}

/// Whether the physical plan of `SELECT * FROM table` reads memory (a memory
/// source lists its partitions' batch counts; a file scan its file groups).
async fn reads_memory(fixture: &Fixture, table: &str) -> bool {
    let plan = query(fixture, &format!("EXPLAIN SELECT * FROM {table}")).await;
    let text = format!("{plan:?}");
    assert!(
        text.contains("partition_sizes") != text.contains("file_groups"),
        "one kind of scan: {text}"
    );
    text.contains("partition_sizes")
}

/// Waits until `done` holds of the accelerator's tables (at most a minute).
async fn until(fixture: &Fixture, what: &str, done: impl Fn(&[AcceleratedTable]) -> bool) -> Vec<AcceleratedTable> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tables = fixture.engine.acceleration();
        if done(&tables) {
            return tables;
        }
        assert!(Instant::now() < deadline, "{what}: still {tables:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn held<'a>(tables: &'a [AcceleratedTable], suffix: &str) -> Option<&'a AcceleratedTable> {
    tables
        .iter()
        .find(|t| t.location.ends_with(suffix) && t.state == CopyState::Held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_from_memory_answers_as_raw_datafusion() {
    let fixture = accelerated_fixture(1 << 30).await;
    assert!(
        !reads_memory(&fixture, "sales.lineitem").await,
        "cold: read from the files"
    );
    for p in &fixture.products {
        query(&fixture, &format!("SELECT count(*) FROM {}.{}", p.domain, p.name)).await;
    }
    let tables = until(&fixture, "every product held", |t| {
        t.len() == 8 && t.iter().all(|t| t.state == CopyState::Held)
    })
    .await;
    let lineitem = held(&tables, "/lineitem").expect("lineitem held");
    assert_eq!(lineitem.rows, 60_175, "every row of lineitem at SF 0.01");
    assert!(lineitem.bytes > 1 << 20, "its bytes are counted: {}", lineitem.bytes);
    assert!(reads_memory(&fixture, "sales.lineitem").await, "hot: read from memory");

    let raw = reference(&fixture).await;
    let pg = fixture.pg(ADMIN_KEY).await.expect("PostgreSQL wire connects");
    for (name, sql) in crate::tpch::queries() {
        let sql = sql.trim().trim_end_matches(';');
        let expected = rows(&raw.sql(sql).await.expect(&name).collect().await.expect(&name));
        assert_eq!(query(&fixture, sql).await, expected, "{name}: in process, from memory");
        let simple = pg.simple_query(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            crate::fixture::pg_rows(&simple),
            expected,
            "{name}: PostgreSQL wire, from memory"
        );
    }
    let copies = |tables: &[AcceleratedTable]| {
        tables
            .iter()
            .map(|t| (t.location.clone(), t.version, t.rows, t.bytes, t.load_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        copies(&fixture.engine.accelerated()),
        copies(&tables),
        "the copies served every query: none was reloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_never_answered_from_the_copy_of_an_earlier_version() {
    let fixture = accelerated_fixture(1 << 30).await;
    let count = "SELECT count(*) FROM customers.region";
    assert_eq!(query(&fixture, count).await, [["5"]]);
    let first = until(&fixture, "region held", |t| held(t, "/region").is_some()).await;
    let first = held(&first, "/region").expect("held").version;
    assert!(reads_memory(&fixture, "customers.region").await);

    let committed = fixture.append_regions().await;
    assert!(committed > first, "a new version: {committed} after {first}");
    // The very next query sees the commit: the copy of the earlier version
    // answers for nothing, the files do until the new copy is made.
    assert_eq!(query(&fixture, count).await, [["10"]]);
    let now = until(&fixture, "the new version held", |t| {
        held(t, "/region").is_some_and(|h| h.version == committed)
    })
    .await;
    assert_eq!(held(&now, "/region").map(|h| h.rows), Some(10));
    assert_eq!(query(&fixture, count).await, [["10"]], "from the new copy");
    assert!(reads_memory(&fixture, "customers.region").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_share_one_memory_budget() {
    // Sizes first, with room for everything.
    let roomy = accelerated_fixture(1 << 30).await;
    for table in ["customers.region", "customers.nation"] {
        query(&roomy, &format!("SELECT count(*) FROM {table}")).await;
    }
    let sizes = until(&roomy, "both held", |t| {
        held(t, "/region").is_some() && held(t, "/nation").is_some()
    })
    .await;
    let (region, nation) = (
        held(&sizes, "/region").expect("region").bytes,
        held(&sizes, "/nation").expect("nation").bytes,
    );

    // Room for either, not both, and the copy held was read just now: it is
    // kept, and the other waits (no two hot tables evicting each other).
    let busy = accelerated_fixture_evicting(region + nation - 1, 3_600_000).await;
    query(&busy, "SELECT count(*) FROM customers.region").await;
    until(&busy, "region held", |t| held(t, "/region").is_some()).await;
    query(&busy, "SELECT count(*) FROM customers.nation").await;
    let after = until(&busy, "nation refused", |t| {
        t.iter()
            .any(|t| t.location.ends_with("/nation") && t.state == CopyState::NoRoom)
    })
    .await;
    assert!(held(&after, "/region").is_some(), "region kept: {after:#?}");
    assert_eq!(query(&busy, "SELECT count(*) FROM customers.nation").await, [["25"]]);

    // Room for either, not both, and idle copies may go: the least recently read goes.
    let tight = accelerated_fixture(region + nation - 1).await;
    query(&tight, "SELECT count(*) FROM customers.region").await;
    until(&tight, "region held", |t| held(t, "/region").is_some()).await;
    query(&tight, "SELECT count(*) FROM customers.nation").await;
    let after = until(&tight, "nation held", |t| held(t, "/nation").is_some()).await;
    assert!(held(&after, "/region").is_none(), "region evicted: {after:#?}");
    assert!(!reads_memory(&tight, "customers.region").await);
    assert_eq!(query(&tight, "SELECT count(*) FROM customers.region").await, [["5"]]);

    // A table larger than the whole budget stays on its files, and is not
    // copied again and again.
    assert_eq!(query(&tight, "SELECT count(*) FROM sales.lineitem").await, [["60175"]]);
    let refused = until(&tight, "lineitem refused", |t| {
        t.iter()
            .any(|t| t.location.ends_with("/lineitem") && t.state == CopyState::TooLarge)
    })
    .await;
    let version = refused
        .iter()
        .find(|t| t.location.ends_with("/lineitem"))
        .map(|t| t.version);
    query(&tight, "SELECT count(*) FROM sales.lineitem").await;
    let again = tight.engine.acceleration();
    let lineitem = again
        .iter()
        .find(|t| t.location.ends_with("/lineitem"))
        .expect("lineitem known");
    assert_eq!(
        (lineitem.state.clone(), Some(lineitem.version)),
        (CopyState::TooLarge, version),
        "not tried again at the same version"
    );
    assert!(!reads_memory(&tight, "sales.lineitem").await);
}
