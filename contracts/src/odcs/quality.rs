//! Quality rules compiled to SQL. Every `library` metric and every `sql` rule
//! becomes one query returning one number, judged by the rule's operator;
//! `text` and `custom` rules are reported as not executable, never skipped.
//! The SQL is plain ANSI (as DataFusion runs it) over a table reference the
//! caller gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arrow::column_name;
use super::compat::sla_measure;
use super::model::{DataContract, Quality, SchemaProperty};

/// A rule's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "value")]
pub enum Operator {
    MustBe(f64),
    MustNotBe(f64),
    MustBeGreaterThan(f64),
    MustBeGreaterOrEqualTo(f64),
    MustBeLessThan(f64),
    MustBeLessOrEqualTo(f64),
    MustBeBetween(f64, f64),
    MustNotBeBetween(f64, f64),
}

impl Operator {
    /// Whether a measured value satisfies the rule.
    pub fn holds(&self, measured: f64) -> bool {
        match *self {
            Self::MustBe(v) => (measured - v).abs() < 1e-9,
            Self::MustNotBe(v) => (measured - v).abs() >= 1e-9,
            Self::MustBeGreaterThan(v) => measured > v,
            Self::MustBeGreaterOrEqualTo(v) => measured >= v,
            Self::MustBeLessThan(v) => measured < v,
            Self::MustBeLessOrEqualTo(v) => measured <= v,
            Self::MustBeBetween(lo, hi) => (lo..=hi).contains(&measured),
            Self::MustNotBeBetween(lo, hi) => !(lo..=hi).contains(&measured),
        }
    }

    /// The threshold as written, e.g. `mustBeLessThan 5`.
    pub fn describe(&self) -> String {
        match self {
            Self::MustBe(v) => format!("mustBe {v}"),
            Self::MustNotBe(v) => format!("mustNotBe {v}"),
            Self::MustBeGreaterThan(v) => format!("mustBeGreaterThan {v}"),
            Self::MustBeGreaterOrEqualTo(v) => format!("mustBeGreaterOrEqualTo {v}"),
            Self::MustBeLessThan(v) => format!("mustBeLessThan {v}"),
            Self::MustBeLessOrEqualTo(v) => format!("mustBeLessOrEqualTo {v}"),
            Self::MustBeBetween(lo, hi) => format!("mustBeBetween [{lo}, {hi}]"),
            Self::MustNotBeBetween(lo, hi) => format!("mustNotBeBetween [{lo}, {hi}]"),
        }
    }

    fn of(q: &Quality) -> Result<Self, String> {
        let num = |v: &serde_json::Number| v.as_f64().ok_or_else(|| format!("{v} is not a number"));
        let value = |v: &Value| match v {
            Value::Number(n) => num(n),
            Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            other => Err(format!("mustBe compares numbers, got {other}")),
        };
        let pair = |v: &[serde_json::Number]| match v {
            [lo, hi] => Ok((num(lo)?, num(hi)?)),
            _ => Err("a range takes two numbers".to_string()),
        };
        if let Some(v) = &q.must_be {
            return Ok(Self::MustBe(value(v)?));
        }
        if let Some(v) = &q.must_not_be {
            return Ok(Self::MustNotBe(value(v)?));
        }
        if let Some(v) = &q.must_be_greater_than {
            return Ok(Self::MustBeGreaterThan(num(v)?));
        }
        if let Some(v) = &q.must_be_greater_or_equal_to {
            return Ok(Self::MustBeGreaterOrEqualTo(num(v)?));
        }
        if let Some(v) = &q.must_be_less_than {
            return Ok(Self::MustBeLessThan(num(v)?));
        }
        if let Some(v) = &q.must_be_less_or_equal_to {
            return Ok(Self::MustBeLessOrEqualTo(num(v)?));
        }
        if let Some(v) = &q.must_be_between {
            let (lo, hi) = pair(v)?;
            return Ok(Self::MustBeBetween(lo, hi));
        }
        if let Some(v) = &q.must_not_be_between {
            let (lo, hi) = pair(v)?;
            return Ok(Self::MustNotBeBetween(lo, hi));
        }
        Err("the rule has no operator".into())
    }
}

/// One check to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable across runs: the rule's id, else its name, else its position.
    pub key: String,
    /// Where the rule is declared, e.g. `orders.o_custkey.quality[0]`.
    pub path: String,
    /// `library:nullValues`, `sql`, `text`, `custom`.
    pub rule: String,
    #[serde(default)]
    pub dimension: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    pub how: How,
}

/// How a check is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum How {
    /// Run the SQL (one row, one number) and judge it.
    Sql { sql: String, operator: Operator },
    /// A rule no engine here can run (`text`, `custom`, or malformed).
    NotExecutable { reason: String },
}

/// Quotes an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string().to_uppercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        other => Some(format!("'{}'", other.to_string().replace('\'', "''"))),
    }
}

/// The checks of a contract's first schema object (a product's output port),
/// over `table` (an SQL table reference, already quoted as needed).
pub fn checks(contract: &DataContract, table: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(object) = contract.schema.as_ref().and_then(|s| s.first()) else {
        return out;
    };
    for (i, q) in object.quality.iter().flatten().enumerate() {
        out.push(check(q, &format!("{}.quality[{i}]", object.name), table, None));
    }
    for p in object.properties.iter().flatten() {
        walk(&mut out, &object.name, p, table);
    }
    out
}

fn walk(out: &mut Vec<Check>, prefix: &str, p: &SchemaProperty, table: &str) {
    let Some(name) = column_name(p) else { return };
    let path = format!("{prefix}.{name}");
    for (i, q) in p.quality.iter().flatten().enumerate() {
        out.push(check(q, &format!("{path}.quality[{i}]"), table, Some(name)));
    }
    // Nested columns' rules are declared but not runnable as plain columns.
    for nested in p.properties.iter().flatten() {
        for (i, q) in nested.quality.iter().flatten().enumerate() {
            let nested_path = format!("{path}.{}.quality[{i}]", nested.name.as_deref().unwrap_or("?"));
            out.push(Check {
                key: key(q, &nested_path),
                path: nested_path,
                rule: rule_name(q),
                dimension: q.dimension.clone(),
                severity: q.severity.clone(),
                how: How::NotExecutable {
                    reason: "rules on nested properties are not executable yet".into(),
                },
            });
        }
    }
}

fn key(q: &Quality, path: &str) -> String {
    q.id.clone()
        .or_else(|| q.name.clone())
        .unwrap_or_else(|| path.to_string())
}

fn rule_name(q: &Quality) -> String {
    match q
        .kind
        .as_deref()
        .unwrap_or(if q.query.is_some() { "sql" } else { "library" })
    {
        "library" => format!("library:{}", q.metric.as_deref().or(q.rule.as_deref()).unwrap_or("?")),
        other => other.to_string(),
    }
}

fn check(q: &Quality, path: &str, table: &str, column: Option<&str>) -> Check {
    let how = match compile(q, table, column) {
        Ok((sql, operator)) => How::Sql { sql, operator },
        Err(reason) => How::NotExecutable { reason },
    };
    Check {
        key: key(q, path),
        path: path.to_string(),
        rule: rule_name(q),
        dimension: q.dimension.clone(),
        severity: q.severity.clone(),
        how,
    }
}

fn compile(q: &Quality, table: &str, column: Option<&str>) -> Result<(String, Operator), String> {
    let kind = q
        .kind
        .as_deref()
        .unwrap_or(if q.query.is_some() { "sql" } else { "library" });
    match kind {
        "text" => return Err("a text rule is read by people, not run".into()),
        "custom" => {
            return Err(format!(
                "a custom rule runs in its own engine ({}), not here",
                q.engine.as_deref().unwrap_or("unnamed")
            ));
        }
        _ => {}
    }
    let operator = Operator::of(q)?;
    if kind == "sql" {
        let query = q.query.as_deref().ok_or("an sql rule has a query")?;
        let mut sql = query.replace("${object}", table).replace("{object}", table);
        if let Some(c) = column {
            sql = sql.replace("${property}", &ident(c)).replace("{property}", &ident(c));
        }
        return Ok((sql, operator));
    }
    let metric = q
        .metric
        .as_deref()
        .or(q.rule.as_deref())
        .ok_or("a library rule names its metric")?;
    let args = q.arguments.clone().unwrap_or_default();
    let percent = matches!(q.unit.as_deref(), Some("percent" | "%"));
    // `count` rows matching `condition`, as a count or a share of all rows.
    let share = |condition: &str| {
        if percent {
            format!(
                "SELECT CAST(COUNT(*) FILTER (WHERE {condition}) AS DOUBLE) * 100.0 / GREATEST(COUNT(*), 1) FROM {table}"
            )
        } else {
            format!("SELECT COUNT(*) FROM {table} WHERE {condition}")
        }
    };
    let sql = match (metric, column) {
        ("rowCount", _) => format!("SELECT COUNT(*) FROM {table}"),
        ("nullValues", Some(c)) => share(&format!("{} IS NULL", ident(c))),
        ("missingValues", Some(c)) => {
            let listed = args
                .get("missingValues")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let literals: Vec<String> = listed.iter().filter_map(literal).collect();
            let mut condition = format!("{} IS NULL", ident(c));
            if !literals.is_empty() {
                condition = format!(
                    "{condition} OR CAST({} AS VARCHAR) IN ({})",
                    ident(c),
                    literals.join(", ")
                );
            }
            share(&condition)
        }
        ("invalidValues", Some(c)) => {
            let col = ident(c);
            let condition = if let Some(valid) = args.get("validValues").and_then(Value::as_array) {
                let literals: Vec<String> = valid.iter().filter_map(literal).collect();
                format!("{col} IS NOT NULL AND {col} NOT IN ({})", literals.join(", "))
            } else if let Some(pattern) = args.get("pattern").and_then(Value::as_str) {
                format!(
                    "{col} IS NOT NULL AND NOT regexp_like(CAST({col} AS VARCHAR), '{}')",
                    pattern.replace('\'', "''")
                )
            } else {
                return Err("invalidValues needs validValues or pattern".into());
            };
            share(&condition)
        }
        ("duplicateValues", _) => {
            let columns: Vec<String> = match column {
                Some(c) => vec![c.to_string()],
                None => args
                    .get("properties")
                    .and_then(Value::as_array)
                    .map(|ps| ps.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            };
            if columns.is_empty() {
                return Err("duplicateValues names its properties".into());
            }
            let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
            let not_null: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
            let dupes = format!(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM {table} WHERE {} GROUP BY {} HAVING COUNT(*) > 1) AS d",
                not_null.join(" AND "),
                cols.join(", ")
            );
            if percent {
                format!("SELECT CAST(({dupes}) AS DOUBLE) * 100.0 / GREATEST((SELECT COUNT(*) FROM {table}), 1)")
            } else {
                dupes
            }
        }
        (m, None) => return Err(format!("{m} applies to a property")),
        (m, Some(_)) => return Err(format!("unknown metric {m:?}")),
    };
    Ok((sql, operator))
}

/// The freshness promise of a contract, in seconds: `freshness` if given, else
/// `frequency` plus `latency`, else either alone.
pub fn freshness_limit(contract: &DataContract) -> Option<f64> {
    let slas = contract.sla_properties.as_deref().unwrap_or_default();
    let get = |name: &str| {
        slas.iter()
            .find(|s| s.property.eq_ignore_ascii_case(name) && s.element.is_none())
            .and_then(sla_measure)
    };
    get("freshness").or_else(|| match (get("frequency"), get("latency")) {
        (Some(f), Some(l)) => Some(f + l),
        (f, l) => f.or(l),
    })
}
