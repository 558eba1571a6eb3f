//! The 22 TPC-H queries (tables qualified by domain) through every protocol,
//! each equal to raw DataFusion's answer over the same Delta tables.

use crate::fixture::{ADMIN_KEY, Fixture, Lake, pg_rows, reference, rows};
use tessera_gateway::{Limits, Protocol};

pub(crate) fn queries() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/tpch");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("reads"))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_through_every_protocol_equals_raw_datafusion() {
    suite(Fixture::start(Limits::default()).await).await;
}

/// The same suite with the tables on the S3-compatible server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_on_s3_through_every_protocol_equals_raw_datafusion() {
    let dir = tempfile::tempdir().expect("tempdir");
    suite(Fixture::start_at(Limits::default(), dir, Lake::s3()).await).await;
}

async fn suite(fixture: Fixture) {
    let raw = reference(&fixture).await;
    let queries = queries();
    assert_eq!(queries.len(), 22, "the suite has 22 queries");
    let principal = fixture.engine.authenticate(ADMIN_KEY).expect("admin key");
    let pg = fixture.pg(ADMIN_KEY).await.expect("PostgreSQL wire connects");
    let mut non_empty = 0;
    for (name, sql) in &queries {
        let sql = sql.trim().trim_end_matches(';');
        let expected = rows(&raw.sql(sql).await.expect(name).collect().await.expect(name));
        if !expected.is_empty() {
            non_empty += 1;
        }

        let session = fixture
            .engine
            .session(&principal, Protocol::InProcess, None)
            .expect("session");
        let in_process = session.sql(sql).await.expect(name).collect().await.expect(name);
        assert_eq!(rows(&in_process), expected, "{name}: in process");

        let http = fixture
            .http_query(ADMIN_KEY, sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: HTTP {e:?}"));
        assert_eq!(rows(&http), expected, "{name}: HTTP (Arrow)");

        let flight = fixture
            .flight_query(ADMIN_KEY, sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: Flight SQL {e}"));
        assert_eq!(rows(&flight), expected, "{name}: Flight SQL");

        let simple = pg
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: PG simple {e}"));
        assert_eq!(pg_rows(&simple), expected, "{name}: PostgreSQL wire, simple protocol");
    }
    assert!(non_empty >= 20, "at SF 0.01 most queries return rows ({non_empty})");
}

/// Prepared statements with parameters: Flight SQL (bound with DoPut) and
/// PostgreSQL wire (extended protocol), reused with different values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;

    let fixture = Fixture::start(Limits::default()).await;
    let sql = "SELECT n_name FROM customers.nation WHERE n_nationkey = $1";

    let mut client = fixture.flight(ADMIN_KEY).await;
    let mut prepared = client.prepare(sql.to_string(), None).await.expect("prepares");
    assert_eq!(prepared.parameter_schema().expect("schema").fields().len(), 1);
    for (key, name) in [(7, "GERMANY"), (0, "ALGERIA")] {
        let params = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![key]))],
        )
        .expect("batch");
        prepared.set_parameters(params).expect("binds");
        let info = prepared.execute().await.expect("executes");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<RecordBatch> = client
            .do_get(ticket)
            .await
            .expect("streams")
            .try_collect()
            .await
            .expect("rows");
        assert_eq!(rows(&batches), vec![vec![name.to_string()]], "Flight SQL with ${key}");
    }
    prepared.close().await.expect("closes");

    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    let statement = pg.prepare(sql).await.expect("prepares");
    for (key, name) in [(7i64, "GERMANY"), (0, "ALGERIA")] {
        let row = pg.query_one(&statement, &[&key]).await.expect("executes");
        assert_eq!(row.get::<_, String>(0), name, "PostgreSQL wire with ${key}");
    }
}

/// Time functions take the query's start time, over every protocol, also in
/// filters pushed into the scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_functions_answer_with_the_query_start() {
    let fixture = Fixture::start(Limits::default()).await;
    let sql = "SELECT count(*) AS n, now() > TIMESTAMP '2020-01-01' AS later, current_date >= DATE '2026-01-01' AS today \
               FROM sales.orders WHERE o_orderdate < now()";
    let http = fixture.http_query(ADMIN_KEY, sql).await.expect("answers over HTTP");
    let pg = fixture.pg(ADMIN_KEY).await.expect("connects");
    let row = pg.query_one(sql, &[]).await.expect("answers over PostgreSQL wire");
    let flight = fixture
        .flight_query(ADMIN_KEY, sql)
        .await
        .expect("answers over Flight SQL");
    assert_eq!(rows(&http), rows(&flight));
    assert_eq!(
        rows(&http),
        vec![vec![row.get::<_, i64>(0).to_string(), "true".into(), "true".into()]]
    );
}

/// Flight SQL's catalog calls list what the principal may query, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_metadata_lists_the_session() {
    use arrow::array::{Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
    use futures::TryStreamExt;

    let fixture = Fixture::start(Limits::default()).await;
    let mut client = fixture.flight(ADMIN_KEY).await;
    async fn fetch(
        client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
        info: arrow_flight::FlightInfo,
    ) -> Vec<RecordBatch> {
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        client
            .do_get(ticket)
            .await
            .expect("streams")
            .try_collect()
            .await
            .expect("batches")
    }
    fn column(batches: &[RecordBatch], name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for b in batches {
            let values = b
                .column_by_name(name)
                .expect("column")
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings")
                .clone();
            out.extend((0..values.len()).map(|i| values.value(i).to_string()));
        }
        out
    }

    let info = client.get_catalogs().await.expect("catalogs");
    assert_eq!(column(&fetch(&mut client, info).await, "catalog_name"), ["tessera"]);
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    assert_eq!(
        column(&fetch(&mut client, info).await, "db_schema_name"),
        ["customers", "sales", "supply"]
    );
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("sales".into()),
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let tables = fetch(&mut client, info).await;
    assert_eq!(column(&tables, "table_name"), ["lineitem", "orders"]);
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerName, SqlInfo::FlightSqlServerReadOnly])
        .await
        .expect("sql info");
    assert_eq!(
        fetch(&mut client, info)
            .await
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        2
    );

    // Without a key: unauthenticated.
    let mut anonymous = fixture.flight(ADMIN_KEY).await;
    anonymous.clear_token();
    let error = anonymous.get_catalogs().await.expect_err("needs a key");
    match error {
        arrow_flight::error::FlightError::Tonic(status) => assert_eq!(status.code(), tonic::Code::Unauthenticated),
        other => panic!("{other}"),
    }

    // The Basic handshake with the key as password gives a working token.
    let mut basic = fixture.flight(ADMIN_KEY).await;
    basic.clear_token();
    basic.handshake("anyone", ADMIN_KEY).await.expect("handshake");
    let info = basic.get_catalogs().await.expect("catalogs after the handshake");
    assert_eq!(column(&fetch(&mut basic, info).await, "catalog_name"), ["tessera"]);
}

/// A few rows picked from a large table cross the wire as a few rows: the
/// string views of a top-k keep the buffers they were picked from, which
/// Arrow IPC would otherwise send whole (and past gRPC's 4 MiB limit at SF 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_rows_of_a_large_table_cross_the_wire_small() {
    use arrow_flight::flight_service_client::FlightServiceClient;
    use futures::TryStreamExt;

    let fixture = Fixture::start(Limits::default()).await;
    let sql = "SELECT l_comment, l_shipmode FROM sales.lineitem ORDER BY l_extendedprice DESC, l_orderkey, l_linenumber LIMIT 5";
    let limit = 16 << 10;

    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/query", fixture.http))
        .bearer_auth(ADMIN_KEY)
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await
        .expect("sends");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("body");
    assert!(body.len() < limit, "HTTP Arrow: {} bytes for 5 rows", body.len());
    let rows: usize = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .expect("arrow stream")
        .map(|b| b.expect("batch").num_rows())
        .sum();
    assert_eq!(rows, 5);

    let mut sql_client = fixture.flight(ADMIN_KEY).await;
    let info = sql_client.execute(sql.to_string(), None).await.expect("executes");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", fixture.flight))
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let mut request = tonic::Request::new(ticket);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN_KEY}").parse().expect("header"));
    let messages: Vec<arrow_flight::FlightData> = FlightServiceClient::new(channel)
        .do_get(request)
        .await
        .expect("streams")
        .into_inner()
        .try_collect()
        .await
        .expect("messages");
    let bytes: usize = messages.iter().map(|m| m.data_body.len() + m.data_header.len()).sum();
    assert!(bytes < limit, "Flight SQL: {bytes} bytes for 5 rows");
}
