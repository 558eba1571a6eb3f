//! Policy propagation: the time from a catalog change to the gateway enforcing
//! it. As admin, the mask `pii_hashed` is switched between `hash` and `redact`
//! (read with its ETag, replaced with `If-Match`), and the analyst's query
//! `SELECT c_name FROM customers.customer LIMIT 1` is polled every 2 ms until
//! its answer shows the new function (64 hex digits, or `***`). The clock
//! starts when the change is sent, so the figure covers the catalog's write,
//! the bundle's rebuild, the gateway's watch and swap, and one query.
//! The mask is restored to what it was at the end, also after a failure.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tessera_sdk::Client;
use tessera_sdk::policy::{MaskFunction, MaskSpec};

use crate::latency::{self, Percentiles, median, round3};
use crate::mesh::{Mesh, Options};

/// The demo's mask on columns classified pii (customers.customer's c_name among them).
const MASK: &str = "pii_hashed";
/// The governed persona and her purpose: the mask applies to her.
const ANALYST: &str = "ana";
const ANALYTICS: &str = "analytics";
/// The probe query.
const PROBE: &str = "SELECT c_name FROM customers.customer LIMIT 1";
/// How often the probe runs while waiting.
const POLL: Duration = Duration::from_millis(2);
/// Far beyond the goal (1 s): a change not enforced by then is a failure.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The goal of issue #8.
const GOAL_P99_MS: f64 = 1000.0;

/// What the analyst sees in c_name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Hashed,
    Redacted,
    Other(String),
}

impl Seen {
    fn of(function: MaskFunction) -> Self {
        match function {
            MaskFunction::Hash => Self::Hashed,
            MaskFunction::Redact => Self::Redacted,
            other => Self::Other(format!("{other:?}")),
        }
    }
}

/// Runs the probe once as the analyst.
async fn probe(ana: &Client) -> anyhow::Result<Seen> {
    let result = ana
        .query(PROBE, Some(ANALYTICS))
        .await
        .context("the probe query failed")?;
    let name = result
        .rows
        .first()
        .and_then(|r| r.get("c_name"))
        .and_then(Value::as_str)
        .context("the probe query returned no c_name")?;
    Ok(if name == "***" {
        Seen::Redacted
    } else if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        Seen::Hashed
    } else {
        Seen::Other(name.to_string())
    })
}

/// One change and its enforcement, in milliseconds.
struct Sample {
    /// From sending the change to the first probe answer showing it.
    enforced_ms: f64,
    /// The REST call alone.
    put_ms: f64,
    probes: usize,
}

/// Replaces the mask's function and waits until the analyst's answers show it.
async fn change(
    admin: &Client,
    ana: &Client,
    spec: &mut MaskSpec,
    etag: &mut Option<String>,
    function: MaskFunction,
) -> anyhow::Result<Sample> {
    spec.function = function;
    let want = Seen::of(function);
    let started = Instant::now();
    let updated = admin
        .replace_mask(MASK, spec, etag.as_deref())
        .await
        .with_context(|| format!("cannot replace the mask {MASK}"))?;
    let put_ms = started.elapsed().as_secs_f64() * 1000.0;
    *etag = Some(tessera_sdk::etag(updated.revision));
    let mut probes = 0;
    loop {
        probes += 1;
        if probe(ana).await? == want {
            return Ok(Sample {
                enforced_ms: started.elapsed().as_secs_f64() * 1000.0,
                put_ms,
                probes,
            });
        }
        if started.elapsed() > TIMEOUT {
            bail!(
                "the gateway did not enforce {function:?} within {} s",
                TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn run(mesh: &Mesh, opts: &Options) -> anyhow::Result<Value> {
    let admin = Client::new(mesh.url.clone(), latency::key(mesh, "admin")?)?;
    let ana = Client::new(mesh.url.clone(), latency::key(mesh, ANALYST)?)?;
    let original = admin
        .mask(MASK)
        .await
        .with_context(|| format!("the demo has no mask {MASK}"))?;
    let samples = if opts.smoke { 3 } else { 30 };
    let measured = measure(&admin, &ana, &original, samples, opts.warmup).await;
    // Put back what was there, whatever happened.
    let restored = restore(&admin, &original.value.spec).await;
    let (samples, probe_ms) = measured?;
    restored?;

    let mut enforced: Vec<f64> = samples.iter().map(|s| s.enforced_ms).collect();
    let put: Vec<f64> = samples.iter().map(|s| s.put_ms).collect();
    let probes: Vec<f64> = samples.iter().map(|s| s.probes as f64).collect();
    let p = Percentiles::of(&mut enforced);
    Ok(json!({
        "change": format!("mask {MASK}: function hash <-> redact, PUT /api/v1/masks/{MASK} with If-Match"),
        "probe": format!("{PROBE} as {ANALYST} (purpose {ANALYTICS}) over HTTP, every {} ms", POLL.as_millis()),
        "probe_query_ms_p50": round3(probe_ms),
        "goal": "policy propagation p99 ≤ 1 s",
        "goal_measured": format!("p99 {} ms", round3(p.p99)),
        "goal_met": p.p99 <= GOAL_P99_MS,
        "rows": [{
            "samples": samples.len(),
            "p50_ms": round3(p.p50),
            "p90_ms": round3(p.p90),
            "p99_ms": round3(p.p99),
            "max_ms": round3(p.max),
            "put_p50_ms": round3(median(&put)),
            "probes_p50": median(&probes),
        }],
    }))
}

/// `warmup` unmeasured changes, then `samples` measured ones, alternating the
/// function; also the probe's own latency beforehand (the resolution of the figure).
async fn measure(
    admin: &Client,
    ana: &Client,
    original: &tessera_sdk::Versioned<tessera_sdk::policy::Mask>,
    samples: usize,
    warmup: usize,
) -> anyhow::Result<(Vec<Sample>, f64)> {
    let mut spec = original.value.spec.clone();
    let mut etag = original
        .etag
        .clone()
        .or_else(|| Some(tessera_sdk::etag(original.value.revision)));
    // The analyst must see the mask as stored before the first change.
    let mut probe_ms = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let seen = probe(ana).await?;
        probe_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if seen != Seen::of(spec.function) && matches!(spec.function, MaskFunction::Hash | MaskFunction::Redact) {
            bail!(
                "the analyst sees {seen:?} in c_name before any change, not {:?}",
                spec.function
            );
        }
    }
    let mut out = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let next = if spec.function == MaskFunction::Hash {
            MaskFunction::Redact
        } else {
            MaskFunction::Hash
        };
        let sample = change(admin, ana, &mut spec, &mut etag, next).await?;
        if i >= warmup {
            out.push(sample);
        }
    }
    Ok((out, median(&probe_ms)))
}

/// Writes the original mask back (on the latest ETag), unless it is there already.
async fn restore(admin: &Client, original: &MaskSpec) -> anyhow::Result<()> {
    let current = admin.mask(MASK).await?;
    if current.value.spec == *original {
        return Ok(());
    }
    let etag = current
        .etag
        .clone()
        .unwrap_or_else(|| tessera_sdk::etag(current.value.revision));
    admin
        .replace_mask(MASK, original, Some(&etag))
        .await
        .with_context(|| format!("cannot restore the mask {MASK}"))?;
    Ok(())
}
