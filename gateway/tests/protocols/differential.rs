//! The differential test of governance: thousands of random queries (fixed
//! seed) through the governed engine, for each persona, against plain
//! DataFusion over the persona's visible copy of the data (pre-filtered and
//! pre-masked without gateway code). Every answer, rows or error, must match.
//!
//! `TESSERA_DIFFERENTIAL_QUERIES` (default 10000) and
//! `TESSERA_DIFFERENTIAL_SEED` change the run; a failure prints the seed, the
//! persona and the query, so it can be replayed.

use std::collections::BTreeMap;

use futures::StreamExt;
use tessera_gateway::Protocol;

use crate::governance::{ANA, Answer, FRED, Persona, error_kind, governed_fixture, reference_answer, visible_copy};
use crate::sqlgen::SqlGen;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One query's two answers.
struct Outcome {
    i: usize,
    persona: Persona,
    sql: String,
    features: Vec<&'static str>,
    got: Answer,
    expected: Answer,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_queries_answer_as_the_visible_copy_does() {
    let queries: usize = env_or("TESSERA_DIFFERENTIAL_QUERIES", 10_000);
    let seed: u64 = env_or("TESSERA_DIFFERENTIAL_SEED", 20_261_126);
    let fixture = governed_fixture().await;
    let personas = [ANA, FRED];
    let mut copies = Vec::new();
    let mut sessions = Vec::new();
    for persona in personas {
        copies.push(visible_copy(&fixture, persona).await);
        let principal = fixture.engine.authenticate(persona.key).expect("authenticates");
        sessions.push(
            fixture
                .engine
                .session(&principal, Protocol::InProcess, persona.purpose)
                .expect("session"),
        );
    }
    let mut generator = SqlGen::new(seed);
    let work: Vec<(usize, String, Vec<&'static str>)> = (0..queries)
        .map(|i| {
            let q = generator.query();
            (i, q.sql, q.features)
        })
        .collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(work)
        .map(|(i, sql, features)| {
            let which = i % personas.len();
            let persona = personas[which];
            let copy = &copies[which];
            let session = &sessions[which];
            async move {
                let expected = reference_answer(copy, &sql).await;
                let result = match session.sql(&sql).await {
                    Ok(stream) => stream.collect().await,
                    Err(e) => Err(e),
                };
                let got = match result {
                    Ok(batches) => Answer::Rows(crate::fixture::rows(&batches)),
                    Err(e) => {
                        if std::env::var("TESSERA_DEBUG_ANSWERS").is_ok() {
                            eprintln!("#{i}: {e}");
                        }
                        Answer::Error(error_kind(&e.to_string()))
                    }
                };
                Outcome {
                    i,
                    persona,
                    sql,
                    features,
                    got,
                    expected,
                }
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;

    let mut with_rows = 0;
    let mut errors: BTreeMap<&str, usize> = BTreeMap::new();
    let mut features: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for Outcome {
        i,
        persona,
        sql,
        features: used,
        got,
        expected,
    } in &outcomes
    {
        if got.has_rows() {
            with_rows += 1;
        }
        if let Answer::Error(kind) = got {
            *errors.entry(kind).or_default() += 1;
        }
        for f in used {
            *features.entry(f).or_default() += 1;
        }
        if got != expected {
            mismatches.push(format!(
                "#{i} as {}: {sql}\n  gateway:   {got:?}\n  reference: {expected:?}",
                persona.name
            ));
        }
    }
    let total = outcomes.len();
    println!("differential governance test: {total} queries, seed {seed}");
    println!(
        "  returned rows: {with_rows} ({:.1}%)",
        100.0 * with_rows as f64 / total.max(1) as f64
    );
    println!("  errors by kind: {errors:?}");
    println!("  grammar coverage (queries using each feature):");
    for (feature, n) in &features {
        println!("    {feature:<16} {n}");
    }
    println!("  mismatches: {}", mismatches.len());
    assert!(
        mismatches.is_empty(),
        "{} of {total} answers differ (seed {seed}); the first ones:\n{}",
        mismatches.len(),
        mismatches.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        with_rows * 10 >= total * 3,
        "only {with_rows} of {total} queries returned rows: the grammar must reach the data"
    );
}
