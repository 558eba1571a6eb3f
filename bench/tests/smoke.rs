//! A small-scale run of the whole benchmark harness, in the test suite's (dev)
//! profile: it checks that the harness works end to end (the demo mesh starts,
//! every configuration answers every TPC-H query with the same rows, the
//! reports are written), not how fast anything is: no timing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The configurations of a run without DuckDB, in their A B C order.
const CONFIGS: [&str; 7] = ["raw", "inproc", "accelerated", "governed", "flight", "pg", "http"];

/// Those that run as a principal no policy applies to: raw DataFusion's rows.
const SAME_ROWS: [&str; 6] = ["raw", "inproc", "accelerated", "flight", "pg", "http"];

/// A fresh scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("tessera-bench-smoke-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creates the scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `tessera` binary of this build: the test runs as `target/<profile>/deps/smoke-<hash>`.
fn tessera() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let tessera = profile_dir.join("tessera");
    assert!(
        tessera.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace --all-targets)",
        tessera.display()
    );
    tessera
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn the_harness_runs_every_configuration_and_writes_its_reports() {
    let scratch = Scratch::new();
    let out = scratch.0.join("out");
    let work = scratch.0.join("work");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["run", "--scale", "0.01", "--rounds", "1", "--warmup", "0", "--smoke"])
        .arg("--out")
        .arg(&out)
        .arg("--work")
        .arg(&work)
        .arg("--tessera")
        .arg(tessera())
        .args(["--skip", "duckdb,catalog"])
        .output()
        .expect("runs the harness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let demo_log = std::fs::read_to_string(work.join("mesh.log")).unwrap_or_default();
    let demo_log: Vec<&str> = demo_log.lines().collect();
    assert!(
        output.status.success(),
        "the harness failed ({}):\n{stderr}\n--- the demo's log (tail) ---\n{}",
        output.status,
        demo_log[demo_log.len().saturating_sub(30)..].join("\n")
    );
    eprintln!("{stderr}");

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json is written");
    let results: Value = serde_json::from_str(&text).expect("results.json is JSON");
    let tpch = &results["tpch"];
    let queries = strings(&tpch["queries"]);
    assert_eq!(queries.len(), 22, "the 22 TPC-H queries");
    assert_eq!(strings(&tpch["configs"]), CONFIGS, "every configuration but DuckDB");
    for config in CONFIGS {
        for query in &queries {
            let median = tpch["medians"][config][query].as_f64();
            assert!(
                median.is_some_and(|m| m > 0.0),
                "{config} {query}: median {median:?}; errors: {}",
                tpch["errors"]
            );
        }
        assert!(
            tpch["geomean"][config].as_f64().is_some_and(|g| g > 0.0),
            "{config}: a geomean"
        );
    }
    for query in &queries {
        let raw = tpch["rows"]["raw"][query].as_u64().expect("raw's row count");
        for config in SAME_ROWS {
            assert_eq!(
                tpch["rows"][config][query].as_u64(),
                Some(raw),
                "{query}: {config} answers raw DataFusion's {raw} rows"
            );
        }
    }
    assert!(
        tpch["row_mismatches"].as_array().is_some_and(Vec::is_empty),
        "{}",
        tpch["row_mismatches"]
    );
    assert_eq!(results["problems"].as_u64(), Some(0), "no measurement failed");
    let held = tpch["acceleration"]["tables"].as_array().map_or(0, Vec::len);
    assert_eq!(
        held, 8,
        "the accelerated configuration held every product: {}",
        tpch["acceleration"]
    );

    let md = std::fs::read_to_string(out.join("RESULTS.md")).expect("RESULTS.md is written");
    assert!(md.contains("## Headline"), "{md}");
    assert!(
        md.contains("| configuration | what | queries | geomean (s) | vs raw | vs DuckDB | goal | met? |"),
        "the headline table: {md}"
    );
    for config in CONFIGS {
        assert!(
            md.contains(&format!("| **{config}** |")),
            "{config} in the headline table"
        );
    }
    assert!(md.contains("## Goals"), "{md}");
}
