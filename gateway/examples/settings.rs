//! Measures the engine settings of `tessera_gateway::engine::session_config` on
//! the TPC-H suite over the demo mesh: each setting switched the other way in turn, against
//! the serving configuration, alternating A B A B, reporting the median total.
//!
//! `cargo run --profile measure -p tessera-gateway --example settings -- [SCALE] [ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::catalog::MemorySchemaProvider;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

fn queries() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/tpch");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the TPC-H queries")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let sql = std::fs::read_to_string(&p).expect("reads");
            (p.file_stem().expect("stem").to_string_lossy().into_owned(), sql)
        })
        .collect();
    out.sort();
    out
}

async fn context(root: &str, config: SessionConfig, metadata_cache: usize) -> SessionContext {
    let runtime = RuntimeEnvBuilder::new()
        .with_metadata_cache_limit(metadata_cache)
        .build_arc()
        .expect("runtime");
    let ctx = SessionContext::new_with_config_rt(
        config
            .with_create_default_catalog_and_schema(true)
            .with_default_catalog_and_schema("datafusion", "public"),
        runtime,
    );
    let catalog = ctx.catalog("datafusion").expect("catalog");
    for (domain, product) in tessera_testkit::tpch::MESH {
        if catalog.schema(domain).is_none() {
            catalog
                .register_schema(domain, Arc::new(MemorySchemaProvider::new()))
                .expect("schema");
        }
        let table = tessera_lake::open_table(&format!("{root}/{domain}/{product}"), &Default::default())
            .await
            .expect("opens")
            .expect("exists");
        ctx.register_table(
            format!("{domain}.{product}"),
            table.table_provider().await.expect("provider"),
        )
        .expect("registers");
    }
    ctx
}

async fn suite(ctx: &SessionContext, queries: &[(String, String)]) -> Duration {
    let started = Instant::now();
    for (name, sql) in queries {
        let sql = sql.trim().trim_end_matches(';');
        ctx.sql(sql).await.expect(name).collect().await.expect(name);
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8").to_string();
    tessera_testkit::tpch::write_mesh(&root, scale, &Default::default())
        .await
        .expect("mesh");
    let queries = queries();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let serving = || tessera_gateway::engine::session_config(cores);
    let variants: Vec<(&str, SessionConfig, usize)> = vec![
        (
            "parquet.pushdown_filters on",
            {
                let mut c = serving();
                c.options_mut().execution.parquet.pushdown_filters = true;
                c.options_mut().execution.parquet.reorder_filters = true;
                c
            },
            256 << 20,
        ),
        ("parquet pruning off", serving().with_parquet_pruning(false), 256 << 20),
        ("metadata cache off", serving(), 0),
        ("target_partitions = 1", serving().with_target_partitions(1), 256 << 20),
    ];
    println!(
        "TPC-H SF {scale}, {} queries, {rounds} rounds A B A B, median of the suite's total",
        queries.len()
    );
    let base = context(&root, serving(), 256 << 20).await;
    suite(&base, &queries).await; // warm-up
    for (name, config, cache) in variants {
        let other = context(&root, config, cache).await;
        suite(&other, &queries).await; // warm-up
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(suite(&base, &queries).await);
            b.push(suite(&other, &queries).await);
        }
        a.sort();
        b.sort();
        let (a, b) = (a[rounds / 2], b[rounds / 2]);
        println!(
            "serving {:>8.1} ms | {name:<30} {:>8.1} ms | ratio {:.3}",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
}
