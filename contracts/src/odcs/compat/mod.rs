//! Compatibility between two versions of a contract within one major version.
//!
//! The default mode, `consumers`, promises that every query that worked on an
//! earlier version still works and still means the same. `strict` also refuses
//! additions; `none` turns the gate off (changes are still reported).
//!
//! The rule table ([`RULES`]) is the single source of truth: the verdict of
//! each rule in each mode, and why. `docs/compatibility.md` prints it.

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::DataType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod labels;
mod rules;

pub use labels::{classification_rank, sla_measure};
use labels::{operators, quality_key, quality_label, sla_label, type_label, widening};
pub use rules::{RULES, Rule, rule, rules_markdown};

use super::arrow::{column_name, property_type, same_type};
use super::model::{DataContract, Quality, SchemaObject, SchemaProperty, SlaProperty};

/// How strictly a product's contract versions must stay compatible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every query that worked on an earlier version of the major still works.
    #[default]
    Consumers,
    /// No check.
    None,
    /// As `consumers`, and additions are refused too.
    Strict,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consumers => "consumers",
            Self::None => "none",
            Self::Strict => "strict",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "consumers" => Some(Self::Consumers),
            "none" => Some(Self::None),
            "strict" => Some(Self::Strict),
            _ => None,
        }
    }
}

/// What a change means for consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Allowed silently.
    Free,
    /// Allowed, and reported.
    Warning,
    /// Refused without a new major version.
    Breaking,
}

/// One change between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Violation {
    /// The rule's id, e.g. `column-removed`.
    pub rule: String,
    /// Where: `orders.o_totalprice`, `slaProperties.latency`, ...
    pub path: String,
    #[serde(default)]
    pub old: Option<String>,
    #[serde(default)]
    pub new: Option<String>,
    pub verdict: Verdict,
}

/// Every change found, with its verdict in the mode compared under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub changes: Vec<Violation>,
}

impl Report {
    pub fn breaking(&self) -> impl Iterator<Item = &Violation> {
        self.changes.iter().filter(|c| c.verdict == Verdict::Breaking)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.changes.iter().filter(|c| c.verdict == Verdict::Warning)
    }

    pub fn is_breaking(&self) -> bool {
        self.breaking().next().is_some()
    }
}

/// Compares `new` against `old` under `mode`.
pub fn compare(old: &DataContract, new: &DataContract, mode: Mode) -> Report {
    let mut d = Differ {
        mode,
        changes: Vec::new(),
    };
    d.objects(
        old.schema.as_deref().unwrap_or_default(),
        new.schema.as_deref().unwrap_or_default(),
    );
    d.slas(
        old.sla_properties.as_deref().unwrap_or_default(),
        new.sla_properties.as_deref().unwrap_or_default(),
    );
    Report { changes: d.changes }
}

struct Differ {
    mode: Mode,
    changes: Vec<Violation>,
}

fn show(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl Differ {
    fn add(&mut self, rule_id: &str, path: &str, old: Option<String>, new: Option<String>) {
        let Some(rule) = rule(rule_id) else { return };
        let verdict = match self.mode {
            Mode::None => Verdict::Free,
            Mode::Consumers => rule.consumers,
            Mode::Strict => rule.strict,
        };
        self.changes.push(Violation {
            rule: rule_id.to_string(),
            path: path.to_string(),
            old,
            new,
            verdict,
        });
    }

    fn objects(&mut self, old: &[SchemaObject], new: &[SchemaObject]) {
        for o in old {
            match new.iter().find(|n| n.name == o.name) {
                None => self.add("object-removed", &o.name, Some(o.name.clone()), None),
                Some(n) => self.object(o, n),
            }
        }
        for n in new {
            if !old.iter().any(|o| o.name == n.name) {
                self.add("object-added", &n.name, None, Some(n.name.clone()));
            }
        }
    }

    fn object(&mut self, old: &SchemaObject, new: &SchemaObject) {
        let path = &old.name;
        if old.description != new.description || old.business_name != new.business_name || old.tags != new.tags {
            self.add("documentation-changed", path, None, None);
        }
        self.properties(
            path,
            old.properties.as_deref().unwrap_or_default(),
            new.properties.as_deref().unwrap_or_default(),
        );
        self.quality(
            path,
            old.quality.as_deref().unwrap_or_default(),
            new.quality.as_deref().unwrap_or_default(),
        );
        let partitions = |ps: &[SchemaProperty]| -> Vec<(Option<i64>, String)> {
            ps.iter()
                .filter(|p| p.partitioned == Some(true))
                .map(|p| (p.partition_key_position, column_name(p).unwrap_or_default().to_string()))
                .collect()
        };
        let (po, pn) = (
            partitions(old.properties.as_deref().unwrap_or_default()),
            partitions(new.properties.as_deref().unwrap_or_default()),
        );
        if po != pn {
            let names = |v: &[(Option<i64>, String)]| v.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
            self.add("partitioning-changed", path, Some(names(&po)), Some(names(&pn)));
        }
    }

    fn properties(&mut self, prefix: &str, old: &[SchemaProperty], new: &[SchemaProperty]) {
        for o in old {
            let Some(name) = column_name(o) else { continue };
            let path = format!("{prefix}.{name}");
            match new.iter().find(|n| column_name(n) == Some(name)) {
                None => self.add("column-removed", &path, Some(name.to_string()), None),
                Some(n) => self.property(&path, o, n),
            }
        }
        for n in new {
            let Some(name) = column_name(n) else { continue };
            if !old.iter().any(|o| column_name(o) == Some(name)) {
                let shape = if n.required == Some(true) {
                    "required"
                } else {
                    "optional"
                };
                self.add(
                    "column-added",
                    &format!("{prefix}.{name}"),
                    None,
                    Some(format!("{name} ({shape})")),
                );
            }
        }
    }

    fn property(&mut self, path: &str, old: &SchemaProperty, new: &SchemaProperty) {
        self.types(path, old, new);
        match (old.required == Some(true), new.required == Some(true)) {
            (true, false) => self.add(
                "required-to-optional",
                path,
                Some("required".into()),
                Some("optional".into()),
            ),
            (false, true) => self.add(
                "optional-to-required",
                path,
                Some("optional".into()),
                Some("required".into()),
            ),
            _ => {}
        }
        if old.unique.unwrap_or(false) != new.unique.unwrap_or(false) {
            self.add(
                "unique-changed",
                path,
                Some(show(&old.unique.unwrap_or(false))),
                Some(show(&new.unique.unwrap_or(false))),
            );
        }
        let pk = |p: &SchemaProperty| {
            (
                p.primary_key.unwrap_or(false),
                p.primary_key_position.filter(|x| *x > 0),
            )
        };
        if pk(old) != pk(new) {
            let fmt = |p: &SchemaProperty| match pk(p) {
                (false, _) => "not a key".to_string(),
                (true, Some(pos)) => format!("primary key position {pos}"),
                (true, None) => "primary key".to_string(),
            };
            self.add("primary-key-changed", path, Some(fmt(old)), Some(fmt(new)));
        }
        self.enums(path, old, new);
        self.classification(path, old.classification.as_deref(), new.classification.as_deref());
        if old.description != new.description
            || old.business_name != new.business_name
            || old.tags != new.tags
            || old.examples != new.examples
        {
            self.add("documentation-changed", path, None, None);
        }
        self.quality(
            path,
            old.quality.as_deref().unwrap_or_default(),
            new.quality.as_deref().unwrap_or_default(),
        );
        if let (Some(o), Some(n)) = (&old.properties, &new.properties) {
            self.properties(path, o, n);
        }
        if let (Some(o), Some(n)) = (&old.items, &new.items) {
            self.property(&format!("{path}[]"), o, n);
        }
    }

    fn types(&mut self, path: &str, old: &SchemaProperty, new: &SchemaProperty) {
        let (Ok(o), Ok(n)) = (property_type(old), property_type(new)) else {
            if old.physical_type != new.physical_type || old.logical_type != new.logical_type {
                self.add("type-changed", path, Some(type_label(old)), Some(type_label(new)));
            }
            return;
        };
        // Nested members are compared one by one, not as one type.
        if matches!(
            (&o, &n),
            (DataType::Struct(_), DataType::Struct(_)) | (DataType::List(_), DataType::List(_))
        ) {
            return;
        }
        if same_type(&o, &n) {
            return;
        }
        let rule = match widening(&o, &n) {
            Some(true) => "type-widened",
            Some(false) => "type-narrowed",
            None => "type-changed",
        };
        self.add(rule, path, Some(type_label(old)), Some(type_label(new)));
    }

    fn enums(&mut self, path: &str, old: &SchemaProperty, new: &SchemaProperty) {
        let values = |p: &SchemaProperty| -> Option<BTreeSet<String>> {
            p.enum_values
                .as_ref()
                .map(|vs| vs.iter().map(|v| show(&v.value)).collect())
        };
        match (values(old), values(new)) {
            (Some(o), Some(n)) => {
                for removed in o.difference(&n) {
                    self.add("enum-value-removed", path, Some(removed.clone()), None);
                }
                for added in n.difference(&o) {
                    self.add("enum-value-added", path, None, Some(added.clone()));
                }
            }
            // A constraint appears: the values outside it are removed.
            (None, Some(n)) => self.add(
                "enum-value-removed",
                path,
                Some("any value".into()),
                Some(n.into_iter().collect::<Vec<_>>().join(", ")),
            ),
            (Some(o), None) => self.add(
                "enum-value-added",
                path,
                Some(o.into_iter().collect::<Vec<_>>().join(", ")),
                Some("any value".into()),
            ),
            (None, None) => {}
        }
    }

    fn classification(&mut self, path: &str, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        let (o, n) = (
            old.map_or(Some(0), classification_rank),
            new.map_or(Some(0), classification_rank),
        );
        let rule = match (o, n) {
            (Some(a), Some(b)) if b < a => "classification-loosened",
            (Some(a), Some(b)) if b > a => "classification-tightened",
            (Some(_), Some(_)) => return, // different spellings of one level
            _ => "classification-changed",
        };
        self.add(rule, path, old.map(str::to_string), new.map(str::to_string));
    }

    fn quality(&mut self, path: &str, old: &[Quality], new: &[Quality]) {
        let keyed = |qs: &[Quality]| -> BTreeMap<String, (String, Quality)> {
            qs.iter()
                .enumerate()
                .map(|(i, q)| {
                    (
                        quality_key(q).unwrap_or_else(|| format!("#{i}")),
                        (quality_label(q), q.clone()),
                    )
                })
                .collect()
        };
        let (o, n) = (keyed(old), keyed(new));
        for (key, (label, q)) in &o {
            match n.get(key) {
                None => self.add(
                    "quality-rule-removed",
                    &format!("{path}.quality[{key}]"),
                    Some(label.clone()),
                    None,
                ),
                Some((new_label, nq)) if operators(q) != operators(nq) => {
                    self.add(
                        "quality-rule-changed",
                        &format!("{path}.quality[{key}]"),
                        Some(label.clone()),
                        Some(new_label.clone()),
                    );
                }
                Some(_) => {}
            }
        }
        for (key, (label, _)) in &n {
            if !o.contains_key(key) {
                self.add(
                    "quality-rule-added",
                    &format!("{path}.quality[{key}]"),
                    None,
                    Some(label.clone()),
                );
            }
        }
    }

    fn slas(&mut self, old: &[SlaProperty], new: &[SlaProperty]) {
        let key = |s: &SlaProperty| match &s.element {
            Some(e) => format!("{}({e})", s.property),
            None => s.property.clone(),
        };
        for o in old {
            let path = format!("slaProperties.{}", key(o));
            let Some(n) = new.iter().find(|n| key(n) == key(o)) else {
                self.add("sla-weakened", &path, Some(sla_label(o)), None);
                continue;
            };
            if o.value == n.value && o.unit == n.unit && o.value_ext == n.value_ext {
                continue;
            }
            let (Some(a), Some(b)) = (sla_measure(o), sla_measure(n)) else {
                self.add("sla-changed", &path, Some(sla_label(o)), Some(sla_label(n)));
                continue;
            };
            let lower_is_better = !matches!(o.property.to_ascii_lowercase().as_str(), "retention" | "availability");
            let better = if lower_is_better { b < a } else { b > a };
            let rule = if (a - b).abs() < f64::EPSILON {
                continue;
            } else if better {
                "sla-strengthened"
            } else {
                "sla-weakened"
            };
            self.add(rule, &path, Some(sla_label(o)), Some(sla_label(n)));
        }
    }
}
