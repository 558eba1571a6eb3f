use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

use super::compat::{Mode, RULES, Verdict, compare};
use super::*;
use crate::document::DocumentFormat;

const ORDERS: &str = include_str!("../../examples/sales.orders.odcs.yaml");
const CUSTOMER: &str = include_str!("../../examples/customers.customer.odcs.yaml");

fn yaml(text: &str) -> DataContract {
    read(DocumentFormat::Yaml, text).unwrap_or_else(|e| panic!("valid contract: {e}"))
}

fn issues(text: &str) -> Vec<String> {
    match read(DocumentFormat::Yaml, text) {
        Ok(_) => Vec::new(),
        Err(ReadError::Invalid(issues)) => issues.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn the_shipped_examples_are_valid_and_round_trip() {
    for text in [ORDERS, CUSTOMER] {
        let c = yaml(text);
        for format in [DocumentFormat::Yaml, DocumentFormat::Json] {
            let written = write(format, &c);
            let again = read(format, &written).expect("re-reads");
            assert_eq!(c, again, "{format:?}");
        }
        // Nothing the document said is lost: the export, read as plain data,
        // equals the import read as plain data.
        let original: Value = serde_yaml_ng::from_str(text).expect("yaml");
        let exported: Value = serde_json::from_str(&write(DocumentFormat::Json, &c)).expect("json");
        assert_eq!(original, exported);
    }
}

#[test]
fn errors_name_their_paths() {
    let typo = ORDERS.replacen("logicalType: string", "logicalType: strng", 1);
    let found = issues(&typo);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("schema[0].properties[2].logicalType: unknown type \"strng\""),
        "{found:?}"
    );
    let unknown = ORDERS.replacen(
        "        unique: true\n",
        "        unique: true\n        uniq: true\n",
        1,
    );
    let found = issues(&unknown);
    assert!(
        found[0].starts_with("schema[0].properties[0].uniq: unknown field `uniq`"),
        "{found:?}"
    );
    let wrong_type = ORDERS.replacen("required: true", "required: maybe", 1);
    assert!(
        issues(&wrong_type)[0].starts_with("schema[0].properties[0].required"),
        "{:?}",
        issues(&wrong_type)
    );
    assert!(matches!(
        read(DocumentFormat::Yaml, "schema: [unclosed"),
        Err(ReadError::Syntax { format: "YAML", .. })
    ));
    assert!(matches!(
        read(DocumentFormat::Json, "{\"apiVersion\": "),
        Err(ReadError::Syntax { format: "JSON", .. })
    ));
}

#[test]
fn semantic_rules_are_checked() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "apiVersion: v3.1.0",
            "apiVersion: v2.2.0",
            "apiVersion: unsupported ODCS version",
        ),
        ("kind: DataContract", "kind: Contract", "kind: must be \"DataContract\""),
        (
            "version: 1.0.0",
            "version: \"1.0\"",
            "version: \"1.0\" is not a semantic version",
        ),
        ("status: active\n", "", "status: is required in ODCS v3.1.0"),
        (
            "primaryKeyPosition: 1",
            "primaryKeyPosition: 0",
            "schema[0].properties[0].primaryKeyPosition: positions start at 1",
        ),
        (
            "      - name: o_custkey",
            "      - name: o_orderkey",
            "schema[0].properties[1].name: duplicate property \"o_orderkey\"",
        ),
        (
            "            mustBe: 0\n            dimension: uniqueness",
            "            mustBe: 0\n            mustNotBe: 1\n            dimension: uniqueness",
            "schema[0].properties[0].quality[0]: has 2 operators",
        ),
        (
            "dimension: conformity",
            "dimension: beauty",
            "schema[0].properties[2].quality[0].dimension: unknown dimension \"beauty\"",
        ),
        (
            "validValues: [F, O, P]",
            "validValue: [F, O, P]",
            "schema[0].properties[2].quality[0].arguments: invalidValues needs validValues or pattern",
        ),
        (
            "    type: local",
            "    type: floppy",
            "servers[0].type: unknown server type \"floppy\"",
        ),
        (
            "metric: rowCount\n        mustBeGreaterThan: 0",
            "metric: rowCount",
            "schema[0].quality[0]: needs one operator",
        ),
        (
            "        physicalType: int\n",
            "        physicalType: int\n        semanticType: measure\n",
            "schema[0].properties[7].semanticType: exists only from ODCS v3.2.0 on",
        ),
        (
            "        logicalType: date\n",
            "        logicalType: date\n        logicalTypeOptions:\n          precision: 3\n",
            "schema[0].properties[4].logicalTypeOptions.precision: is not an option of logicalType date",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(ORDERS.contains(from), "fixture lacks {from:?}");
        let found = issues(&ORDERS.replacen(from, to, 1));
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "{expected:?} not in {found:?}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut property = json!({"name": "leaf", "logicalType": "string"});
    for i in 0..20 {
        property = json!({"name": format!("n{i}"), "logicalType": "object", "properties": [property]});
    }
    let doc = json!({"apiVersion": "v3.1.0", "kind": "DataContract", "id": "x", "version": "1.0.0", "status": "draft",
                     "schema": [{"name": "t", "properties": [property]}]});
    let found = match read(DocumentFormat::Json, &doc.to_string()) {
        Err(ReadError::Invalid(i)) => i,
        other => panic!("{other:?}"),
    };
    assert!(found.iter().any(|i| i.message.contains("deeper than")), "{found:?}");
    // Far deeper than any parser allows: an error, not a crash.
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read(DocumentFormat::Json, &deep).is_err());
    let deep_yaml = format!("schema: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read(DocumentFormat::Yaml, &deep_yaml).is_err());
}

// ---------------------------------------------------------------- Arrow

#[test]
fn physical_types_map_to_arrow_and_back() {
    let cases = [
        ("bigint", DataType::Int64),
        ("INT", DataType::Int32),
        ("decimal(15,2)", DataType::Decimal128(15, 2)),
        ("numeric(50, 10)", DataType::Decimal256(50, 10)),
        ("varchar(25)", DataType::Utf8),
        (
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        ("timestamp_ntz", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("date", DataType::Date32),
        ("double precision", DataType::Float64),
        (
            "array<int>",
            DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
        ),
    ];
    for (name, expected) in cases {
        let dt = arrow::parse_physical(name).expect(name);
        assert_eq!(dt, expected, "{name}");
        let back = arrow::parse_physical(&arrow::physical_name(&dt)).expect("round trip");
        assert!(arrow::same_type(&back, &dt), "{name}");
    }
    let nested =
        arrow::parse_physical("struct<a:int,b:array<struct<c:string>>,m:map<string,decimal(10,2)>>").expect("nested");
    assert_eq!(
        arrow::physical_name(&nested),
        "struct<a:int,b:array<struct<c:string>>,m:map<string,decimal(10,2)>>"
    );
    assert!(arrow::parse_physical("decimal(0,1)").is_err());
    assert!(arrow::parse_physical("strng").is_err());
}

fn orders_table() -> Schema {
    Schema::new(vec![
        Field::new("o_orderkey", DataType::Int64, false),
        Field::new("o_custkey", DataType::Int64, false),
        Field::new("o_orderstatus", DataType::Utf8View, false),
        Field::new("o_totalprice", DataType::Decimal128(15, 2), false),
        Field::new("o_orderdate", DataType::Date32, false),
        Field::new("o_orderpriority", DataType::Utf8, false),
        Field::new("o_clerk", DataType::Utf8, false),
        Field::new("o_shippriority", DataType::Int32, false),
        Field::new("o_comment", DataType::LargeUtf8, false),
    ])
}

#[test]
fn a_matching_table_verifies() {
    let c = yaml(ORDERS);
    let object = &c.schema.as_ref().expect("schema")[0];
    assert_eq!(arrow::verify(object, &orders_table(), &[]), vec![]);
    // The contract's own Arrow schema verifies too.
    let own = arrow::object_schema(object).expect("arrow schema");
    assert_eq!(arrow::verify(object, &own, &[]), vec![]);
}

#[test]
fn every_kind_of_mismatch_is_named() {
    let c = yaml(ORDERS);
    let object = &c.schema.as_ref().expect("schema")[0];
    let mut fields: Vec<Field> = orders_table().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.retain(|f| f.name() != "o_comment"); // missing
    fields.push(Field::new("o_extra", DataType::Utf8, true)); // extra
    fields[3] = Field::new("o_totalprice", DataType::Decimal128(15, 4), false); // type
    fields[1] = Field::new("o_custkey", DataType::Int64, true); // nullability
    let found = arrow::verify(object, &Schema::new(fields), &["o_orderdate".to_string()]);
    let rules: Vec<(&str, &str)> = found.iter().map(|m| (m.rule.as_str(), m.path.as_str())).collect();
    assert_eq!(
        rules,
        [
            ("nullability-mismatch", "o_custkey"),
            ("type-mismatch", "o_totalprice"),
            ("missing-column", "o_comment"),
            ("extra-column", "o_extra"),
            ("partition-mismatch", "orders"),
        ]
    );
    assert_eq!(found[1].expected, "decimal(15,2)");
    assert_eq!(found[1].actual, "decimal(15,4)");
}

#[test]
fn loose_logical_types_accept_any_width() {
    let c = yaml(CUSTOMER);
    let object = &c.schema.as_ref().expect("schema")[0];
    let table = Schema::new(vec![
        Field::new("c_custkey", DataType::Int64, false),
        Field::new("c_name", DataType::Utf8, false),
        Field::new("c_address", DataType::Utf8, false),
        Field::new("c_nationkey", DataType::Int64, false),
        Field::new("c_phone", DataType::Utf8, false),
        Field::new("c_acctbal", DataType::Decimal128(15, 2), false),
        Field::new("c_mktsegment", DataType::Utf8, false),
        Field::new("c_comment", DataType::Utf8, false),
    ]);
    assert_eq!(arrow::verify(object, &table, &[]), vec![]);
    let mut wrong: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    wrong[0] = Field::new("c_custkey", DataType::Int32, false); // format i64 asked for
    let found = arrow::verify(object, &Schema::new(wrong), &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, "type-mismatch");
}

// ---------------------------------------------------------------- compatibility

/// One change to the orders contract, and its verdict in consumers, strict and
/// none modes (`-` = no change reported).
struct Case {
    name: &'static str,
    from: &'static str,
    to: &'static str,
    rule: &'static str,
    consumers: Verdict,
    strict: Verdict,
}

use Verdict::{Breaking as B, Free as F, Warning as W};

const CASES: &[Case] = &[
    Case {
        name: "column removed",
        from: "      - name: o_comment\n        logicalType: string\n        physicalType: string\n        required: true\n        quality:\n          - type: text\n            description: Comments are free text written by clerks.\n",
        to: "",
        rule: "column-removed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "column renamed",
        from: "name: o_clerk",
        to: "name: o_clerk_name",
        rule: "column-removed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "optional column added",
        from: "    quality:\n      - metric: rowCount",
        to: "      - name: o_channel\n        logicalType: string\n    quality:\n      - metric: rowCount",
        rule: "column-added",
        consumers: W,
        strict: B,
    },
    Case {
        name: "type changed",
        from: "      - name: o_orderdate\n        logicalType: date\n        physicalType: date",
        to: "      - name: o_orderdate\n        logicalType: string\n        physicalType: string",
        rule: "type-changed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "int widened to bigint",
        from: "        physicalType: int\n",
        to: "        physicalType: bigint\n",
        rule: "type-widened",
        consumers: W,
        strict: W,
    },
    Case {
        name: "bigint narrowed to int",
        from: "      - name: o_custkey\n        logicalType: integer\n        physicalType: bigint",
        to: "      - name: o_custkey\n        logicalType: integer\n        physicalType: int",
        rule: "type-narrowed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "decimal precision up",
        from: "decimal(15,2)",
        to: "decimal(18,2)",
        rule: "type-widened",
        consumers: W,
        strict: W,
    },
    Case {
        name: "decimal scale down",
        from: "decimal(15,2)",
        to: "decimal(15,1)",
        rule: "type-narrowed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "decimal precision down",
        from: "decimal(15,2)",
        to: "decimal(12,2)",
        rule: "type-narrowed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "required to optional",
        from: "      - name: o_orderpriority\n        logicalType: string\n        physicalType: string\n        required: true",
        to: "      - name: o_orderpriority\n        logicalType: string\n        physicalType: string\n        required: false",
        rule: "required-to-optional",
        consumers: B,
        strict: B,
    },
    Case {
        name: "unique dropped",
        from: "        unique: true\n",
        to: "",
        rule: "unique-changed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "primary key dropped",
        from: "        primaryKey: true\n        primaryKeyPosition: 1\n",
        to: "",
        rule: "primary-key-changed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "classification loosened",
        from: "classification: internal",
        to: "classification: public",
        rule: "classification-loosened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "classification tightened",
        from: "classification: internal",
        to: "classification: restricted",
        rule: "classification-tightened",
        consumers: W,
        strict: W,
    },
    Case {
        name: "pii becomes public",
        from: "        classification: internal\n",
        to: "        classification: pii\n",
        rule: "classification-tightened",
        consumers: W,
        strict: W,
    },
    Case {
        name: "latency later",
        from: "    value: 4\n    unit: h",
        to: "    value: 6\n    unit: h",
        rule: "sla-weakened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "latency sooner",
        from: "    value: 4\n    unit: h",
        to: "    value: 120\n    unit: m",
        rule: "sla-strengthened",
        consumers: F,
        strict: F,
    },
    Case {
        name: "frequency less often",
        from: "    value: 1\n    unit: d",
        to: "    value: 1\n    unit: w",
        rule: "sla-weakened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "retention shorter",
        from: "    value: 7\n    unit: y",
        to: "    value: 1\n    unit: y",
        rule: "sla-weakened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "availability lower",
        from: "value: 99.9%",
        to: "value: 99%",
        rule: "sla-weakened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "availability higher",
        from: "value: 99.9%",
        to: "value: 99.99%",
        rule: "sla-strengthened",
        consumers: F,
        strict: F,
    },
    Case {
        name: "sla removed",
        from: "  - property: retention\n    value: 7\n    unit: y\n",
        to: "",
        rule: "sla-weakened",
        consumers: B,
        strict: B,
    },
    Case {
        name: "quality rule removed",
        from: "        quality:\n          - metric: nullValues\n            mustBe: 0\n            dimension: completeness\n",
        to: "",
        rule: "quality-rule-removed",
        consumers: B,
        strict: B,
    },
    Case {
        name: "quality rule added",
        from: "      - name: o_shippriority\n        logicalType: integer\n        physicalType: int\n        required: true\n",
        to: "      - name: o_shippriority\n        logicalType: integer\n        physicalType: int\n        required: true\n        quality:\n          - metric: nullValues\n            mustBe: 0\n",
        rule: "quality-rule-added",
        consumers: F,
        strict: F,
    },
    Case {
        name: "description edited",
        from: "description: Total price of the order.",
        to: "description: Total price, taxes included.",
        rule: "documentation-changed",
        consumers: F,
        strict: F,
    },
    Case {
        name: "tags edited",
        from: "  - tpch\n  - sales\nschema:",
        to: "  - tpch\nschema:",
        rule: "-",
        consumers: F,
        strict: F,
    },
    Case {
        name: "examples edited",
        from: "          - F\n          - O\n",
        to: "          - P\n",
        rule: "documentation-changed",
        consumers: F,
        strict: F,
    },
    Case {
        name: "partitioning added",
        from: "        partitioned: false\n",
        to: "        partitioned: true\n",
        rule: "partitioning-changed",
        consumers: W,
        strict: W,
    },
    Case {
        name: "optional to required",
        from: "      - name: o_orderpriority\n        logicalType: string\n        physicalType: string\n        required: true",
        to: "      - name: o_orderpriority\n        logicalType: string\n        physicalType: string\n        required: true",
        rule: "-",
        consumers: F,
        strict: F,
    },
];

#[test]
fn compatibility_table() {
    let old = yaml(ORDERS);
    let mut table = String::from("| change | rule | consumers | strict | none |\n|---|---|---|---|---|\n");
    for case in CASES {
        assert!(
            ORDERS.contains(case.from),
            "{}: fixture lacks {:?}",
            case.name,
            case.from
        );
        let new = yaml(&ORDERS.replacen(case.from, case.to, 1));
        let mut verdicts = Vec::new();
        for (mode, expected) in [
            (Mode::Consumers, case.consumers),
            (Mode::Strict, case.strict),
            (Mode::None, Verdict::Free),
        ] {
            let report = compare(&old, &new, mode);
            let worst = report.changes.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Free);
            assert_eq!(worst, expected, "{} in {mode:?}: {:?}", case.name, report.changes);
            if case.rule != "-" {
                assert!(
                    report.changes.iter().any(|c| c.rule == case.rule),
                    "{}: rule {} not in {:?}",
                    case.name,
                    case.rule,
                    report.changes
                );
            }
            assert_eq!(report.is_breaking(), expected == Verdict::Breaking);
            verdicts.push(format!("{worst:?}").to_lowercase());
        }
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            case.name,
            case.rule,
            verdicts.join(" | ")
        ));
    }
    assert!(CASES.len() >= 25);
    // Every rule the table documents exists, and the ids are unique.
    let ids: std::collections::BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), RULES.len());
    for case in CASES {
        assert!(case.rule == "-" || ids.contains(case.rule), "{}", case.rule);
    }
    println!("{table}");
}

#[test]
fn violations_carry_old_and_new() {
    let old = yaml(ORDERS);
    let new = yaml(&ORDERS.replacen("decimal(15,2)", "decimal(12,2)", 1));
    let report = compare(&old, &new, Mode::Consumers);
    let v = report.breaking().next().expect("breaking");
    assert_eq!(
        (v.rule.as_str(), v.path.as_str()),
        ("type-narrowed", "orders.o_totalprice")
    );
    assert_eq!(
        (v.old.as_deref(), v.new.as_deref()),
        (Some("decimal(15,2)"), Some("decimal(12,2)"))
    );
    assert!(!compare(&old, &old, Mode::Strict).is_breaking());
    assert!(compare(&old, &old, Mode::Strict).changes.is_empty());
}

#[test]
fn enum_values() {
    let old = yaml(CUSTOMER);
    let removed = yaml(&CUSTOMER.replacen("          - value: MACHINERY\n", "", 1));
    let added = yaml(&CUSTOMER.replacen(
        "          - value: MACHINERY\n",
        "          - value: MACHINERY\n          - value: RETAIL\n",
        1,
    ));
    assert!(
        compare(&old, &removed, Mode::Consumers)
            .changes
            .iter()
            .any(|c| c.rule == "enum-value-removed" && c.verdict == B)
    );
    let r = compare(&old, &added, Mode::Consumers);
    assert!(
        r.changes.iter().any(|c| c.rule == "enum-value-added" && c.verdict == W),
        "{r:?}"
    );
    assert!(compare(&old, &added, Mode::Strict).is_breaking());
}

// ---------------------------------------------------------------- quality SQL

#[test]
fn quality_rules_compile_to_sql() {
    let c = yaml(ORDERS);
    let checks = quality::checks(&c, "t");
    let by_rule: Vec<(&str, &str)> = checks.iter().map(|c| (c.rule.as_str(), c.path.as_str())).collect();
    assert_eq!(
        by_rule,
        [
            ("library:rowCount", "orders.quality[0]"),
            ("library:duplicateValues", "orders.o_orderkey.quality[0]"),
            ("library:nullValues", "orders.o_custkey.quality[0]"),
            ("library:invalidValues", "orders.o_orderstatus.quality[0]"),
            ("sql", "orders.o_totalprice.quality[0]"),
            ("text", "orders.o_comment.quality[0]"),
        ]
    );
    let sql = |i: usize| match &checks[i].how {
        quality::How::Sql { sql, .. } => sql.clone(),
        quality::How::NotExecutable { reason } => panic!("{reason}"),
    };
    assert_eq!(sql(0), "SELECT COUNT(*) FROM t");
    assert_eq!(sql(2), "SELECT COUNT(*) FROM t WHERE \"o_custkey\" IS NULL");
    assert_eq!(
        sql(3),
        "SELECT COUNT(*) FROM t WHERE \"o_orderstatus\" IS NOT NULL AND \"o_orderstatus\" NOT IN ('F', 'O', 'P')"
    );
    assert_eq!(sql(4), "SELECT COUNT(*) FROM t WHERE \"o_totalprice\" < 0");
    assert!(matches!(checks[5].how, quality::How::NotExecutable { .. }));
    let customer = yaml(CUSTOMER);
    let checks = quality::checks(&customer, "t");
    assert!(
        checks
            .iter()
            .any(|c| c.rule == "custom" && matches!(c.how, quality::How::NotExecutable { .. }))
    );
    assert!(quality::Operator::MustBeBetween(1.0, 2.0).holds(2.0));
    assert!(!quality::Operator::MustBeLessThan(1.0).holds(1.0));
    assert_eq!(quality::freshness_limit(&c), Some(86_400.0 + 4.0 * 3600.0));
    assert_eq!(quality::freshness_limit(&customer), Some(2.0 * 86_400.0));
}

// ---------------------------------------------------------------- round trips

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        (-1.0e9f64..1.0e9).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("yes"),
            Just("null"),
            Just("1.0"),
            Just("~"),
            Just("- x"),
            Just("a: b"),
            Just("#c"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn opt<T: std::fmt::Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{1,16}"
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i32>().prop_map(Number::from),
        (-1.0e6f64..1.0e6).prop_map(|f| Number::from_f64(f).unwrap_or_else(|| Number::from(0))),
    ]
}

fn quality_rule() -> impl Strategy<Value = Quality> {
    (
        opt(text()),
        opt(prop_oneof![Just("library"), Just("sql"), Just("text"), Just("custom")].prop_map(String::from)),
        opt(prop_oneof![Just("nullValues"), Just("rowCount")].prop_map(String::from)),
        opt(number()),
        opt(prop::collection::vec(number(), 2)),
        opt(json_value()),
        opt(prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3).prop_map(|m| m.into_iter().collect())),
        opt(prop::collection::vec(text(), 0..3)),
    )
        .prop_map(|(name, kind, metric, lt, between, must_be, arguments, tags)| Quality {
            name,
            kind,
            metric,
            must_be_less_than: lt,
            must_be_between: between,
            must_be,
            arguments,
            tags,
            ..Quality::default()
        })
}

fn property(depth: u32) -> BoxedStrategy<SchemaProperty> {
    let leaf = (
        "[a-z_]{1,10}",
        opt(prop::sample::select(LogicalType::ALL.to_vec())),
        opt(prop_oneof![Just("bigint"), Just("decimal(10,2)"), Just("string")].prop_map(String::from)),
        (opt(any::<bool>()), opt(any::<bool>()), opt(any::<bool>()), opt(1i64..5)),
        opt(prop_oneof![Just("public"), Just("pii"), Just("internal")].prop_map(String::from)),
        opt(prop::collection::vec(json_value(), 0..3)),
        opt(prop::collection::vec(quality_rule(), 0..2)),
        opt(prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3).prop_map(|m| m.into_iter().collect())),
        opt(text()),
    )
        .prop_map(
            |(
                name,
                logical_type,
                physical_type,
                (required, unique, primary_key, position),
                classification,
                examples,
                quality,
                options,
                description,
            )| {
                SchemaProperty {
                    name: Some(name),
                    logical_type,
                    physical_type,
                    required,
                    unique,
                    primary_key,
                    primary_key_position: position,
                    classification,
                    examples,
                    quality,
                    logical_type_options: options,
                    description,
                    ..SchemaProperty::default()
                }
            },
        );
    if depth == 0 {
        return leaf.boxed();
    }
    (
        leaf,
        opt(prop::collection::vec(property(depth - 1), 0..3)),
        opt(property(depth - 1)),
    )
        .prop_map(|(mut p, properties, items)| {
            p.properties = properties;
            p.items = items.map(|mut i| {
                i.name = None;
                Box::new(i)
            });
            p
        })
        .boxed()
}

fn contract() -> impl Strategy<Value = DataContract> {
    (
        prop_oneof![Just("v3.1.0"), Just("v3.2.0")],
        text(),
        (0u64..20, 0u64..20, 0u64..20),
        (opt(text()), opt(text()), opt(text()), opt(text())),
        opt((
            opt(text()),
            opt(text()),
            prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
        )),
        opt(prop::collection::vec(
            (
                "[a-z]{1,8}",
                opt(prop::collection::vec(property(2), 0..4)),
                opt(prop::collection::vec(quality_rule(), 0..2)),
            ),
            0..3,
        )),
        opt(prop::collection::vec(("[a-z]{1,8}", scalar(), opt(text())), 0..3)),
        opt(prop::collection::vec(("[a-z]{1,8}", json_value()), 0..3)),
        opt(prop::collection::vec(text(), 0..3)),
    )
        .prop_map(
            |(api, id, (ma, mi, pa), (status, name, domain, product), description, schema, slas, custom, tags)| {
                DataContract {
                    api_version: api.to_string(),
                    kind: "DataContract".into(),
                    id,
                    version: format!("{ma}.{mi}.{pa}"),
                    status,
                    name,
                    tenant: None,
                    domain,
                    data_product: product,
                    description: description.map(|(purpose, usage, extra)| Description {
                        purpose,
                        usage,
                        extra: extra
                            .into_iter()
                            .filter(|(k, _)| !["purpose", "usage", "limitations"].contains(&k.as_str()))
                            .collect(),
                        ..Description::default()
                    }),
                    schema: schema.map(|objects| {
                        objects
                            .into_iter()
                            .map(|(name, properties, quality)| SchemaObject {
                                name,
                                properties,
                                quality,
                                ..SchemaObject::default()
                            })
                            .collect()
                    }),
                    servers: None,
                    team: None,
                    roles: None,
                    support: None,
                    price: None,
                    sla_properties: slas.map(|s| {
                        s.into_iter()
                            .map(|(property, value, unit)| SlaProperty {
                                property,
                                value,
                                id: None,
                                value_ext: None,
                                unit,
                                element: None,
                                driver: None,
                                description: None,
                                scheduler: None,
                                schedule: None,
                                authoritative_definitions: None,
                                custom_properties: None,
                            })
                            .collect()
                    }),
                    sla_default_element: None,
                    tags,
                    authoritative_definitions: None,
                    custom_properties: custom.map(|c| {
                        c.into_iter()
                            .map(|(property, value)| CustomProperty {
                                property,
                                value,
                                id: None,
                                description: None,
                                vendor: None,
                            })
                            .collect()
                    }),
                    contract_created_ts: None,
                    context: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Export then import gives back the same contract, in both formats, and
    /// the export of the import is the export: nothing is lost or reordered.
    #[test]
    fn export_then_import_is_lossless(c in contract()) {
        for format in [DocumentFormat::Yaml, DocumentFormat::Json] {
            let written = write(format, &c);
            let read_back = parse(format, &written);
            prop_assert!(read_back.is_ok(), "{:?}: {}\n{}", format, read_back.err().map(|e| e.to_string()).unwrap_or_default(), written);
            let read_back = read_back.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(&read_back, &c);
            prop_assert_eq!(write(format, &read_back), written);
        }
    }
}

#[test]
fn the_documented_rule_table_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/compatibility.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == compat::rules_markdown(),
        "docs/compatibility.md is out of date: run `cargo run -q -- contract rules > docs/compatibility.md`"
    );
}
