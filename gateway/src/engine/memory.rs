//! Memory bounded per query and per process.
//!
//! - Every query's pool is its own limit *and* a share of one process-wide
//!   pool ([`QueryPool`]): with every admitted query at its limit, the
//!   process still holds no more than the configured total.
//! - DataFusion's scalar functions build their results without asking any
//!   pool, and some build large ones from small arguments (`repeat('x',
//!   1e9)`). Those are replaced in the gateway's sessions by capped versions
//!   ([`capped`]): the same names and results below the cap; above it, the
//!   pool's error, before anything is allocated.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// A query's pool: its own limit, and its share of the process-wide pool.
#[derive(Debug)]
pub struct QueryPool {
    local: Arc<dyn MemoryPool>,
    global: Arc<dyn MemoryPool>,
}

impl QueryPool {
    pub fn new(local: Arc<dyn MemoryPool>, global: Arc<dyn MemoryPool>) -> Self {
        Self { local, global }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (within {})", self.local, self.global)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "tessera-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.local.register(consumer);
        self.global.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.local.unregister(consumer);
        self.global.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.local.grow(reservation, additional);
        self.global.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.local.shrink(reservation, shrink);
        self.global.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.local.try_grow(reservation, additional)?;
        if let Err(e) = self.global.try_grow(reservation, additional) {
            self.local.shrink(reservation, additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the gateway's memory for all queries is in use ({e})"
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.local.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.local.memory_limit()
    }
}

/// How a capped function's output could grow: an upper bound of the bytes
/// one call builds over a batch.
type Estimate = fn(&[ColumnarValue], usize) -> usize;

/// The functions that can build large values from small arguments, with the
/// bound of what they build.
const CAPPED: [(&str, Estimate); 11] = [
    ("repeat", |a, rows| {
        per_row(rows, |i| text_len(a.first(), i).saturating_mul(count(a.get(1), i)))
    }),
    ("lpad", |a, rows| {
        per_row(rows, |i| {
            count(a.get(1), i).saturating_mul(4).max(text_len(a.first(), i))
        })
    }),
    ("rpad", |a, rows| {
        per_row(rows, |i| {
            count(a.get(1), i).saturating_mul(4).max(text_len(a.first(), i))
        })
    }),
    ("concat", |a, rows| {
        per_row(rows, |i| a.iter().map(|v| text_len(Some(v), i)).sum())
    }),
    ("concat_ws", |a, rows| {
        per_row(rows, |i| {
            let parts: usize = a.iter().skip(1).map(|v| text_len(Some(v), i)).sum();
            parts.saturating_add(text_len(a.first(), i).saturating_mul(a.len()))
        })
    }),
    ("replace", |a, rows| {
        per_row(rows, |i| {
            let text = text_len(a.first(), i);
            text.saturating_mul(text_len(a.get(2), i).max(1)).saturating_add(text)
        })
    }),
    ("regexp_replace", |a, rows| {
        per_row(rows, |i| {
            let text = text_len(a.first(), i);
            text.saturating_mul(text_len(a.get(2), i).max(1)).saturating_add(text)
        })
    }),
    ("array_repeat", |a, rows| {
        per_row(rows, |i| count(a.get(1), i).saturating_mul(16))
    }),
    ("array_resize", |a, rows| {
        per_row(rows, |i| count(a.get(1), i).saturating_mul(16))
    }),
    ("range", |a, rows| per_row(rows, |i| series_len(a, i).saturating_mul(8))),
    ("generate_series", |a, rows| {
        per_row(rows, |i| series_len(a, i).saturating_mul(8))
    }),
];

/// The capped versions of a session's large-value functions, for `cap` bytes
/// per call (each wraps the function `lookup` finds under its name).
pub fn capped(lookup: impl Fn(&str) -> Option<Arc<ScalarUDF>>, cap: usize) -> Vec<ScalarUDF> {
    CAPPED
        .iter()
        .filter_map(|(name, estimate)| {
            let inner = lookup(name)?;
            Some(ScalarUDF::new_from_impl(Capped {
                inner,
                cap,
                estimate: *estimate,
            }))
        })
        .collect()
}

fn per_row(rows: usize, size: impl Fn(usize) -> usize) -> usize {
    (0..rows).fold(0usize, |total, i| total.saturating_add(size(i)))
}

/// The value of an argument at a row: a column's, or a scalar's for every row.
fn scalar_at(arg: Option<&ColumnarValue>, row: usize) -> Option<ScalarValue> {
    match arg? {
        ColumnarValue::Scalar(s) => Some(s.clone()),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, row).ok(),
    }
}

/// The byte length of a text (or binary) argument at a row; 0 for NULL or
/// other types.
fn text_len(arg: Option<&ColumnarValue>, row: usize) -> usize {
    match arg {
        Some(ColumnarValue::Array(a)) if row < a.len() && !a.is_null(row) => match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).len(),
            DataType::LargeUtf8 => a.as_string::<i64>().value(row).len(),
            DataType::Utf8View => a.as_string_view().value(row).len(),
            DataType::Binary => a.as_binary::<i32>().value(row).len(),
            DataType::LargeBinary => a.as_binary::<i64>().value(row).len(),
            _ => 0,
        },
        Some(ColumnarValue::Array(_)) | None => 0,
        Some(ColumnarValue::Scalar(s)) => match s {
            ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => v.len(),
            ScalarValue::Binary(Some(v)) | ScalarValue::LargeBinary(Some(v)) => v.len(),
            _ => 0,
        },
    }
}

/// A count argument at a row (negative and NULL count as 0).
fn count(arg: Option<&ColumnarValue>, row: usize) -> usize {
    scalar_at(arg, row)
        .and_then(|v| v.cast_to(&DataType::Int64).ok())
        .and_then(|v| match v {
            ScalarValue::Int64(Some(n)) => usize::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// How many values `range(start, stop, step)` (or `range(stop)`) builds at a row.
fn series_len(args: &[ColumnarValue], row: usize) -> usize {
    let int = |i: usize| -> Option<i128> {
        match scalar_at(args.get(i), row)?.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(Some(n)) => Some(i128::from(n)),
            _ => None,
        }
    };
    let (start, stop, step) = match args.len() {
        1 => (Some(0), int(0), Some(1)),
        2 => (int(0), int(1), Some(1)),
        _ => (int(0), int(1), int(2)),
    };
    match (start, stop, step) {
        (Some(start), Some(stop), Some(step)) if step != 0 => {
            usize::try_from(((stop - start) / step).max(0).saturating_add(1)).unwrap_or(usize::MAX)
        }
        // Dates and timestamps step by intervals: no estimate, no cap.
        _ => 0,
    }
}

/// A function whose output is estimated, and refused above the cap, before it runs.
#[derive(Debug)]
struct Capped {
    inner: Arc<ScalarUDF>,
    cap: usize,
    /// Chosen by the inner function's name: equality and hashing go by it.
    estimate: Estimate,
}

impl PartialEq for Capped {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.cap == other.cap
    }
}

impl Eq for Capped {}

impl std::hash::Hash for Capped {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.cap.hash(state);
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            1
        } else {
            args.number_rows
        };
        let size = (self.estimate)(&args.args, rows);
        if size > self.cap {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build {size} bytes, over the {} bytes one call may build",
                self.inner.name(),
                self.cap
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::{FairSpillPool, GreedyMemoryPool};

    use super::*;

    #[test]
    fn queries_share_the_process_pool_within_their_own_limits() {
        let global: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let query = || -> Arc<dyn MemoryPool> {
            Arc::new(QueryPool::new(Arc::new(FairSpillPool::new(80)), Arc::clone(&global)))
        };
        let (a, b) = (query(), query());
        let first = MemoryConsumer::new("first").register(&a);
        let second = MemoryConsumer::new("second").register(&b);
        first.try_grow(60).expect("within both limits");
        assert!(first.try_grow(30).is_err(), "over the query's own limit");
        let refused = second.try_grow(60).expect_err("over what all queries may hold");
        assert!(refused.to_string().contains("all queries"), "{refused}");
        // A refusal leaves nothing reserved anywhere.
        assert_eq!((b.reserved(), global.reserved()), (0, 60));
        second.try_grow(40).expect("what is left");
        drop(first);
        assert_eq!(global.reserved(), 40, "a finished query gives its share back");
        second.try_grow(40).expect("and another can use it");
    }

    #[test]
    fn capped_functions_estimate_before_they_build() {
        let rows = 3;
        let texts = ColumnarValue::Array(Arc::new(arrow::array::StringArray::from(vec!["ab", "c", "def"])));
        let counts = ColumnarValue::Scalar(ScalarValue::Int64(Some(1000)));
        let repeat = CAPPED.iter().find(|(n, _)| *n == "repeat").expect("repeat").1;
        assert_eq!(repeat(&[texts.clone(), counts], rows), (2 + 1 + 3) * 1000);
        let range = CAPPED.iter().find(|(n, _)| *n == "range").expect("range").1;
        let bounds = [1, 1001, 10].map(|v| ColumnarValue::Scalar(ScalarValue::Int64(Some(v))));
        assert_eq!(range(&bounds, 1), 101 * 8);
        let negative = ColumnarValue::Scalar(ScalarValue::Int64(Some(-5)));
        assert_eq!(repeat(&[texts, negative], rows), 0);
    }
}
