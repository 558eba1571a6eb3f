//! What the ODCS JSON schema cannot say, or says too loosely: the rules a contract
//! must meet beyond its shape, each reported at its path.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{DataContract, LogicalType, Quality, SchemaObject, SchemaProperty};
use super::{Issue, SUPPORTED_API_VERSIONS};

/// Nested properties deeper than this are refused (no real table needs more, and
/// it bounds every recursive walk over a contract).
pub const MAX_DEPTH: usize = 16;

const QUALITY_TYPES: [&str; 4] = ["text", "library", "sql", "custom"];
/// Library metrics of ODCS v3.
pub const METRICS: [&str; 5] = [
    "rowCount",
    "nullValues",
    "missingValues",
    "invalidValues",
    "duplicateValues",
];
const DIMENSIONS: [&str; 7] = [
    "accuracy",
    "completeness",
    "conformity",
    "consistency",
    "coverage",
    "timeliness",
    "uniqueness",
];
/// Server types of ODCS v3.1.0 (v3.2.0 adds [`SERVER_TYPES_V3_2`]).
const SERVER_TYPES: [&str; 34] = [
    "api",
    "athena",
    "azure",
    "bigquery",
    "clickhouse",
    "databricks",
    "denodo",
    "dremio",
    "duckdb",
    "glue",
    "cloudsql",
    "db2",
    "hive",
    "impala",
    "informix",
    "kafka",
    "kinesis",
    "local",
    "mysql",
    "oracle",
    "postgresql",
    "postgres",
    "presto",
    "pubsub",
    "redshift",
    "s3",
    "sftp",
    "snowflake",
    "sqlserver",
    "synapse",
    "trino",
    "vertica",
    "zen",
    "custom",
];
const SERVER_TYPES_V3_2: [&str; 10] = [
    "btrieve",
    "exasol",
    "fastobjects",
    "hana",
    "iceberg",
    "ingres",
    "poet",
    "teradata",
    "vectorwise",
    "versant",
];

/// Validates a parsed contract; an empty list means it is valid.
pub fn validate(contract: &DataContract) -> Vec<Issue> {
    let mut v = Validator {
        issues: Vec::new(),
        v3_2: contract.api_version == "v3.2.0",
    };
    v.root(contract);
    v.issues
}

struct Validator {
    issues: Vec<Issue>,
    v3_2: bool,
}

impl Validator {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    fn since_v3_2(&mut self, path: &str, present: bool) {
        if present && !self.v3_2 {
            self.push(path, "exists only from ODCS v3.2.0 on: declare apiVersion v3.2.0");
        }
    }

    fn root(&mut self, c: &DataContract) {
        if !SUPPORTED_API_VERSIONS.contains(&c.api_version.as_str()) {
            self.push(
                "apiVersion",
                format!(
                    "unsupported ODCS version {:?}: Tessera reads {}",
                    c.api_version,
                    SUPPORTED_API_VERSIONS.join(" and ")
                ),
            );
        }
        if c.kind != "DataContract" {
            self.push("kind", format!("must be \"DataContract\", got {:?}", c.kind));
        }
        if c.id.trim().is_empty() {
            self.push("id", "must not be empty");
        }
        if let Err(e) = semver::Version::parse(&c.version) {
            self.push(
                "version",
                format!("{:?} is not a semantic version (MAJOR.MINOR.PATCH): {e}", c.version),
            );
        }
        if c.status.is_none() && !self.v3_2 {
            self.push("status", "is required in ODCS v3.1.0");
        }
        self.since_v3_2("context", c.context.is_some());
        let objects = c.schema.as_deref().unwrap_or_default();
        let mut names = BTreeSet::new();
        for (i, object) in objects.iter().enumerate() {
            let path = format!("schema[{i}]");
            if !names.insert(object.name.as_str()) {
                self.push(
                    format!("{path}.name"),
                    format!("duplicate schema object {:?}", object.name),
                );
            }
            self.object(&path, object);
        }
        for (i, sla) in c.sla_properties.iter().flatten().enumerate() {
            if sla.property.trim().is_empty() {
                self.push(format!("slaProperties[{i}].property"), "must not be empty");
            }
            self.since_v3_2(
                &format!("slaProperties[{i}].customProperties"),
                sla.custom_properties.is_some(),
            );
            self.since_v3_2(
                &format!("slaProperties[{i}].authoritativeDefinitions"),
                sla.authoritative_definitions.is_some(),
            );
        }
        let mut servers = BTreeSet::new();
        for (i, server) in c.servers.iter().flatten().enumerate() {
            let path = format!("servers[{i}]");
            if !servers.insert(server.server.as_str()) {
                self.push(
                    format!("{path}.server"),
                    format!("duplicate server {:?}", server.server),
                );
            }
            if SERVER_TYPES_V3_2.contains(&server.kind.as_str()) {
                self.since_v3_2(&format!("{path}.type"), true);
            } else if !SERVER_TYPES.contains(&server.kind.as_str()) {
                self.push(format!("{path}.type"), format!("unknown server type {:?}", server.kind));
            }
            if let Some(port) = &server.port {
                match port {
                    Value::Number(n) if n.is_u64() => {}
                    Value::String(_) => self.since_v3_2(&format!("{path}.port"), true),
                    _ => self.push(format!("{path}.port"), "must be a port number"),
                }
            }
            for (field, present) in [
                ("workgroup", server.workgroup.is_some()),
                ("catalogUrl", server.catalog_url.is_some()),
                ("namespace", server.namespace.is_some()),
            ] {
                self.since_v3_2(&format!("{path}.{field}"), present);
            }
        }
        for (i, cp) in c.custom_properties.iter().flatten().enumerate() {
            self.since_v3_2(&format!("customProperties[{i}].vendor"), cp.vendor.is_some());
        }
    }

    fn object(&mut self, path: &str, object: &SchemaObject) {
        if object.name.trim().is_empty() {
            self.push(format!("{path}.name"), "must not be empty");
        }
        if let Some(t) = &object.logical_type
            && t != "object"
        {
            self.push(
                format!("{path}.logicalType"),
                format!("a schema object's logicalType is \"object\", got {t:?}"),
            );
        }
        self.since_v3_2(&format!("{path}.deprecated"), object.deprecated.is_some());
        self.since_v3_2(&format!("{path}.synonyms"), object.synonyms.is_some());
        self.since_v3_2(&format!("{path}.context"), object.context.is_some());
        let properties = object.properties.as_deref().unwrap_or_default();
        self.properties(&format!("{path}.properties"), properties, 1);
        self.keys(path, properties);
        for (i, q) in object.quality.iter().flatten().enumerate() {
            self.quality(&format!("{path}.quality[{i}]"), q, false);
        }
    }

    /// Primary-key and partition positions are unique and start at 1.
    fn keys(&mut self, path: &str, properties: &[SchemaProperty]) {
        let mut pk = BTreeSet::new();
        let mut parts = BTreeSet::new();
        for (i, p) in properties.iter().enumerate() {
            if let Some(pos) = p.primary_key_position.filter(|pos| *pos != -1) {
                let at = format!("{path}.properties[{i}].primaryKeyPosition");
                if p.primary_key != Some(true) {
                    self.push(&at, "is set but primaryKey is not true");
                } else if pos < 1 {
                    self.push(&at, "positions start at 1");
                } else if !pk.insert(pos) {
                    self.push(&at, format!("position {pos} is taken by another property"));
                }
            }
            if let Some(pos) = p.partition_key_position.filter(|pos| *pos != -1) {
                let at = format!("{path}.properties[{i}].partitionKeyPosition");
                if p.partitioned != Some(true) {
                    self.push(&at, "is set but partitioned is not true");
                } else if pos < 1 {
                    self.push(&at, "positions start at 1");
                } else if !parts.insert(pos) {
                    self.push(&at, format!("position {pos} is taken by another property"));
                }
            }
        }
    }

    fn properties(&mut self, path: &str, properties: &[SchemaProperty], depth: usize) {
        let mut names = BTreeSet::new();
        for (i, p) in properties.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match p.name.as_deref() {
                None => self.push(format!("{at}.name"), "is required"),
                Some(n) if n.trim().is_empty() => self.push(format!("{at}.name"), "must not be empty"),
                Some(n) => {
                    if !names.insert(n) {
                        self.push(format!("{at}.name"), format!("duplicate property {n:?}"));
                    }
                }
            }
            self.property(&at, p, depth);
        }
    }

    fn property(&mut self, path: &str, p: &SchemaProperty, depth: usize) {
        if depth > MAX_DEPTH {
            self.push(path, format!("properties nest deeper than {MAX_DEPTH} levels"));
            return;
        }
        let logical = p.logical_type;
        if let Some(t) = logical
            && t.since_v3_2()
        {
            self.since_v3_2(&format!("{path}.logicalType"), true);
        }
        for (field, present) in [
            ("semanticType", p.semantic_type.is_some()),
            ("enum", p.enum_values.is_some()),
            ("deprecated", p.deprecated.is_some()),
            ("synonyms", p.synonyms.is_some()),
            ("map", p.map.is_some()),
        ] {
            self.since_v3_2(&format!("{path}.{field}"), present);
        }
        if let Some(s) = &p.semantic_type
            && !["column", "measure", "dimension"].contains(&s.as_str())
        {
            self.push(format!("{path}.semanticType"), format!("unknown semantic type {s:?}"));
        }
        if let Some(values) = &p.enum_values {
            if values.is_empty() {
                self.push(format!("{path}.enum"), "needs at least one value");
            }
            let mut seen = BTreeSet::new();
            for (i, v) in values.iter().enumerate() {
                if matches!(v.value, Value::Array(_) | Value::Object(_)) {
                    self.push(format!("{path}.enum[{i}].value"), "must be a single value");
                }
                if !seen.insert(v.value.to_string()) {
                    self.push(
                        format!("{path}.enum[{i}].value"),
                        format!("duplicate value {}", v.value),
                    );
                }
            }
        }
        if let Some(options) = &p.logical_type_options {
            let allowed: &[&str] = match logical {
                Some(LogicalType::String) => &["minLength", "maxLength", "pattern", "format"],
                Some(LogicalType::Date) => &["format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
                Some(LogicalType::Timestamp | LogicalType::Time) => &[
                    "format",
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "timezone",
                    "defaultTimezone",
                ],
                Some(LogicalType::Integer | LogicalType::Number) => &[
                    "multipleOf",
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "format",
                ],
                Some(LogicalType::Object) => &["maxProperties", "minProperties", "required"],
                Some(LogicalType::Array) => &["maxItems", "minItems", "uniqueItems"],
                Some(LogicalType::Vector) => &[
                    "dimensions",
                    "elementType",
                    "distanceMetric",
                    "embeddingModel",
                    "embeddingModelVersion",
                    "normalized",
                ],
                // Open in the standard.
                Some(LogicalType::Boolean | LogicalType::Map) | None => &[],
            };
            if !allowed.is_empty() {
                for key in options.keys() {
                    if !allowed.contains(&key.as_str()) {
                        self.push(
                            format!("{path}.logicalTypeOptions.{key}"),
                            format!(
                                "is not an option of logicalType {}; allowed: {}",
                                logical.map_or("?", LogicalType::as_str),
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            }
            if let Some(format) = options.get("format").and_then(Value::as_str) {
                let formats: &[&str] = match logical {
                    Some(LogicalType::Integer) => {
                        &["i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128"]
                    }
                    Some(LogicalType::Number) => &["f32", "f64"],
                    _ => &[],
                };
                if !formats.is_empty() && !formats.contains(&format) {
                    self.push(
                        format!("{path}.logicalTypeOptions.format"),
                        format!("unknown format {format:?}; allowed: {}", formats.join(", ")),
                    );
                }
            }
        }
        if p.items.is_some() && logical.is_some_and(|t| t != LogicalType::Array) {
            self.push(format!("{path}.items"), "only an array has items");
        }
        if p.properties.is_some() && logical.is_some_and(|t| t != LogicalType::Object) {
            self.push(format!("{path}.properties"), "only an object has properties");
        }
        if logical == Some(LogicalType::Map) && p.map.is_none() {
            self.push(format!("{path}.map"), "a map declares its key and value");
        }
        if let Some(nested) = &p.properties {
            self.properties(&format!("{path}.properties"), nested, depth + 1);
        }
        if let Some(items) = &p.items {
            self.property(&format!("{path}.items"), items, depth + 1);
        }
        if let Some(map) = &p.map {
            self.property(&format!("{path}.map.key"), &map.key, depth + 1);
            self.property(&format!("{path}.map.value"), &map.value, depth + 1);
        }
        for (i, q) in p.quality.iter().flatten().enumerate() {
            self.quality(&format!("{path}.quality[{i}]"), q, true);
        }
    }

    fn quality(&mut self, path: &str, q: &Quality, on_property: bool) {
        let kind = q
            .kind
            .as_deref()
            .unwrap_or(if q.query.is_some() { "sql" } else { "library" });
        if !QUALITY_TYPES.contains(&kind) {
            self.push(
                format!("{path}.type"),
                format!("unknown quality type {kind:?}; allowed: {}", QUALITY_TYPES.join(", ")),
            );
            return;
        }
        if let Some(d) = &q.dimension
            && !DIMENSIONS.contains(&d.as_str())
        {
            self.push(
                format!("{path}.dimension"),
                format!("unknown dimension {d:?}; allowed: {}", DIMENSIONS.join(", ")),
            );
        }
        let operators = operator_count(q);
        match kind {
            "library" => {
                match q.metric.as_deref().or(q.rule.as_deref()) {
                    None => self.push(format!("{path}.metric"), "a library rule names its metric"),
                    Some(m) if !METRICS.contains(&m) => self.push(
                        format!("{path}.metric"),
                        format!("unknown metric {m:?}; allowed: {}", METRICS.join(", ")),
                    ),
                    Some(m) => {
                        if on_property && m == "rowCount" {
                            self.push(
                                format!("{path}.metric"),
                                "rowCount applies to a schema object, not a property",
                            );
                        }
                        if !on_property && ["nullValues", "missingValues", "invalidValues"].contains(&m) {
                            self.push(format!("{path}.metric"), format!("{m} applies to a property"));
                        }
                        let args = q.arguments.as_ref();
                        if m == "invalidValues"
                            && !args.is_some_and(|a| a.contains_key("validValues") || a.contains_key("pattern"))
                        {
                            self.push(
                                format!("{path}.arguments"),
                                "invalidValues needs validValues or pattern",
                            );
                        }
                        if let Some(pattern) = args.and_then(|a| a.get("pattern"))
                            && !pattern.is_string()
                        {
                            self.push(
                                format!("{path}.arguments.pattern"),
                                "must be a regular expression string",
                            );
                        }
                        for key in ["validValues", "missingValues"] {
                            if let Some(list) = args.and_then(|a| a.get(key))
                                && !list.is_array()
                            {
                                self.push(format!("{path}.arguments.{key}"), "must be a list of values");
                            }
                        }
                        if m == "duplicateValues"
                            && !on_property
                            && !args.and_then(|a| a.get("properties")).is_some_and(Value::is_array)
                        {
                            self.push(
                                format!("{path}.arguments.properties"),
                                "duplicateValues on a schema object names the properties that form the key",
                            );
                        }
                    }
                }
                self.one_operator(path, operators);
            }
            "sql" => {
                if q.query.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    self.push(format!("{path}.query"), "an sql rule has a query");
                }
                self.one_operator(path, operators);
            }
            "custom" => {
                if q.engine.is_none() {
                    self.push(format!("{path}.engine"), "a custom rule names its engine");
                }
                if q.implementation.is_none() {
                    self.push(format!("{path}.implementation"), "a custom rule has an implementation");
                }
                if operators > 0 {
                    self.push(path, "a custom rule takes no mustBe... operator");
                }
            }
            _ => {
                if operators > 0 {
                    self.push(path, "a text rule takes no mustBe... operator");
                }
            }
        }
        for (field, range) in [
            ("mustBeBetween", &q.must_be_between),
            ("mustNotBeBetween", &q.must_not_be_between),
        ] {
            if let Some(range) = range {
                match range.as_slice() {
                    [lo, hi] if lo.as_f64() <= hi.as_f64() => {}
                    [_, _] => self.push(format!("{path}.{field}"), "the lower bound comes first"),
                    _ => self.push(format!("{path}.{field}"), "takes exactly two numbers"),
                }
            }
        }
    }

    fn one_operator(&mut self, path: &str, operators: usize) {
        match operators {
            1 => {}
            0 => self.push(path, "needs one operator: mustBe, mustNotBe, mustBeGreaterThan, mustBeGreaterOrEqualTo, mustBeLessThan, mustBeLessOrEqualTo, mustBeBetween or mustNotBeBetween"),
            n => self.push(path, format!("has {n} operators; use exactly one (mustBeBetween for a range)")),
        }
    }
}

fn operator_count(q: &Quality) -> usize {
    [
        q.must_be.is_some(),
        q.must_not_be.is_some(),
        q.must_be_greater_than.is_some(),
        q.must_be_greater_or_equal_to.is_some(),
        q.must_be_less_than.is_some(),
        q.must_be_less_or_equal_to.is_some(),
        q.must_be_between.is_some(),
        q.must_not_be_between.is_some(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count()
}
