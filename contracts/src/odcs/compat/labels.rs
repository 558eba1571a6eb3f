//! How changes are named and measured: type widening, and the labels of
//! properties, quality rules and SLAs in violation reports.

use arrow_schema::DataType;
use serde_json::Value;

use super::show;
use crate::odcs::model::{Quality, SchemaProperty, SlaProperty};

/// `Some(true)` when every value of `old` fits `new` without loss, `Some(false)`
/// when the same kind of type got smaller, `None` for unrelated types.
pub(super) fn widening(old: &DataType, new: &DataType) -> Option<bool> {
    use DataType::*;
    let int_rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        _ => None,
    };
    let uint_rank = |t: &DataType| match t {
        UInt8 => Some(1),
        UInt16 => Some(2),
        UInt32 => Some(3),
        UInt64 => Some(4),
        _ => None,
    };
    let float_rank = |t: &DataType| match t {
        Float16 => Some(1),
        Float32 => Some(2),
        Float64 => Some(3),
        _ => None,
    };
    let decimal = |t: &DataType| match t {
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => Some((i16::from(*p), i16::from(*s))),
        _ => None,
    };
    for rank in [int_rank, uint_rank, float_rank] {
        if let (Some(a), Some(b)) = (rank(old), rank(new)) {
            return Some(b > a);
        }
    }
    if let (Some((p1, s1)), Some((p2, s2))) = (decimal(old), decimal(new)) {
        return Some(s2 >= s1 && p2 - s2 >= p1 - s1);
    }
    // Small integers fit a double exactly.
    if matches!(old, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32) && new == &Float64 {
        return Some(true);
    }
    if matches!(old, Float32 | Float64) && int_rank(new).is_some() {
        return Some(false);
    }
    None
}

pub(super) fn type_label(p: &SchemaProperty) -> String {
    p.physical_type
        .clone()
        .or_else(|| p.logical_type.map(|t| t.as_str().to_string()))
        .unwrap_or_else(|| "untyped".into())
}

/// The order of classification labels; `None` for labels outside it.
pub fn classification_rank(label: &str) -> Option<u8> {
    match label.to_ascii_lowercase().as_str() {
        "public" => Some(0),
        "internal" => Some(1),
        "confidential" | "pii" | "sensitive" => Some(2),
        "restricted" | "secret" => Some(3),
        _ => None,
    }
}

pub(super) fn quality_key(q: &Quality) -> Option<String> {
    if let Some(id) = &q.id {
        return Some(id.clone());
    }
    if let Some(name) = &q.name {
        return Some(name.clone());
    }
    let what = serde_json::json!([
        q.kind,
        q.metric.as_ref().or(q.rule.as_ref()),
        q.query,
        q.arguments,
        q.engine,
        q.implementation,
        q.description
    ]);
    Some(what.to_string())
}

pub(super) fn quality_label(q: &Quality) -> String {
    let what = q
        .name
        .clone()
        .or_else(|| q.metric.clone().or_else(|| q.rule.clone()))
        .or_else(|| q.query.clone())
        .or_else(|| q.description.clone())
        .unwrap_or_else(|| q.kind.clone().unwrap_or_else(|| "rule".into()));
    let ops = operators(q);
    if ops.is_empty() { what } else { format!("{what} {ops}") }
}

pub(super) fn operators(q: &Quality) -> String {
    let mut parts = Vec::new();
    let mut push = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{name} {v}"));
        }
    };
    push("mustBe", q.must_be.as_ref().map(show));
    push("mustNotBe", q.must_not_be.as_ref().map(show));
    push("mustBeGreaterThan", q.must_be_greater_than.as_ref().map(show));
    push(
        "mustBeGreaterOrEqualTo",
        q.must_be_greater_or_equal_to.as_ref().map(show),
    );
    push("mustBeLessThan", q.must_be_less_than.as_ref().map(show));
    push("mustBeLessOrEqualTo", q.must_be_less_or_equal_to.as_ref().map(show));
    push("mustBeBetween", q.must_be_between.as_ref().map(show));
    push("mustNotBeBetween", q.must_not_be_between.as_ref().map(show));
    parts.join(", ")
}

pub(super) fn sla_label(s: &SlaProperty) -> String {
    match &s.unit {
        Some(u) => format!("{} {u}", show(&s.value)),
        None => show(&s.value),
    }
}

/// An SLA value as one comparable number: durations in seconds, percentages as
/// numbers. `None` when it cannot be read.
pub fn sla_measure(s: &SlaProperty) -> Option<f64> {
    let (number, inline_unit) = match &s.value {
        Value::Number(n) => (n.as_f64()?, None),
        Value::String(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(text.len());
            let (n, u) = text.split_at(split);
            (
                n.parse::<f64>().ok()?,
                Some(u.trim().to_string()).filter(|u| !u.is_empty()),
            )
        }
        _ => return None,
    };
    let unit = s.unit.clone().or(inline_unit).unwrap_or_default().to_ascii_lowercase();
    let seconds = match unit.as_str() {
        "" | "%" | "percent" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "mo" | "month" | "months" => 2_592_000.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_536_000.0,
        _ => return None,
    };
    Some(number * seconds)
}
