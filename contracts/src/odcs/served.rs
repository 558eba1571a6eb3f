//! The part of a contract that gateways serve a product's table through.

use serde_json::Value;

#[cfg(doc)]
use super::arrow::{object_schema, verify};
use super::model::{SchemaObject, SchemaProperty};

/// The part of a schema object that serving needs, as gateways get it in the
/// bundle: the object's name and physical name, and per property (nested
/// properties, array items and map keys and values included) what
/// [`verify`] and [`object_schema`] read: names, types (with the `format`
/// and `timezone` options), `required`, partitioning and classification.
/// Descriptions, quality rules, examples, tags, custom properties and the
/// like are dropped.
pub fn served_object(object: &SchemaObject) -> SchemaObject {
    SchemaObject {
        name: object.name.clone(),
        physical_name: object.physical_name.clone(),
        properties: object
            .properties
            .as_ref()
            .map(|props| props.iter().map(served_property).collect()),
        ..SchemaObject::default()
    }
}

/// The options of a logical type that the Arrow mapping reads.
const SERVED_OPTIONS: [&str; 2] = ["format", "timezone"];

fn served_property(p: &SchemaProperty) -> SchemaProperty {
    let options = p.logical_type_options.as_ref().and_then(|o| {
        let kept: serde_json::Map<String, Value> = o
            .iter()
            .filter(|(k, _)| SERVED_OPTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!kept.is_empty()).then_some(kept)
    });
    SchemaProperty {
        name: p.name.clone(),
        physical_name: p.physical_name.clone(),
        physical_type: p.physical_type.clone(),
        logical_type: p.logical_type,
        logical_type_options: options,
        required: p.required,
        partitioned: p.partitioned,
        partition_key_position: p.partition_key_position,
        classification: p.classification.clone(),
        properties: p
            .properties
            .as_ref()
            .map(|props| props.iter().map(served_property).collect()),
        items: p.items.as_deref().map(|i| Box::new(served_property(i))),
        map: p.map.as_ref().map(|m| super::model::MapType {
            key: Box::new(served_property(&m.key)),
            value: Box::new(served_property(&m.value)),
        }),
        ..SchemaProperty::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::DocumentFormat;
    use crate::odcs::arrow::{object_schema, verify};

    const DOCUMENT: &str = r#"
apiVersion: v3.1.0
kind: DataContract
id: orders
version: 1.0.0
status: active
name: orders
schema:
  - name: orders
    physicalName: orders_tbl
    description: every order
    tags: [core]
    quality:
      - type: sql
        query: SELECT COUNT(*) FROM orders
        mustBe: 0
    properties:
      - name: o_orderkey
        physicalName: o_key
        logicalType: integer
        physicalType: bigint
        required: true
        description: the key
        examples: [1, 2]
        tags: [id]
        partitioned: true
        partitionKeyPosition: 1
      - name: o_clerk
        logicalType: string
        classification: internal
        logicalTypeOptions:
          maxLength: 15
        customProperties:
          - property: owner
            value: sales
      - name: o_at
        logicalType: timestamp
        logicalTypeOptions:
          timezone: false
          format: yyyy-MM-dd
          minimum: "2020-01-01"
      - name: o_lines
        logicalType: array
        items:
          logicalType: object
          description: a line
          properties:
            - name: qty
              logicalType: integer
              description: how many
"#;

    #[test]
    fn served_objects_keep_what_serving_needs_and_nothing_else() {
        let contract = crate::odcs::parse(DocumentFormat::Yaml, DOCUMENT).expect("a valid contract");
        let object = &contract.schema.as_ref().expect("schema")[0];
        let served = served_object(object);
        // What verify and the Arrow mapping read is unchanged.
        assert_eq!(object_schema(&served), object_schema(object));
        let table = object_schema(object).expect("an Arrow schema");
        assert_eq!(
            verify(&served, &table, &["o_key".to_string()]),
            verify(object, &table, &["o_key".to_string()])
        );
        assert_eq!(
            (served.name.as_str(), served.physical_name.as_deref()),
            ("orders", Some("orders_tbl"))
        );
        let props = served.properties.as_deref().expect("properties");
        assert_eq!(props.len(), 4);
        assert_eq!(props[0].physical_name.as_deref(), Some("o_key"));
        assert_eq!(
            (props[0].partitioned, props[0].partition_key_position),
            (Some(true), Some(1))
        );
        assert_eq!(props[0].required, Some(true));
        assert_eq!(props[1].classification.as_deref(), Some("internal"));
        assert_eq!(props[1].logical_type_options, None, "maxLength is not served");
        let options = props[2].logical_type_options.as_ref().expect("options");
        assert_eq!(options.keys().collect::<Vec<_>>(), ["format", "timezone"]);
        let items = props[3].items.as_deref().expect("items");
        assert_eq!(items.properties.as_deref().map(<[_]>::len), Some(1));
        // Nothing descriptive is left, at any depth.
        let text = serde_json::to_string(&served).expect("serializes");
        for dropped in [
            "description",
            "examples",
            "tags",
            "quality",
            "customProperties",
            "maxLength",
            "minimum",
        ] {
            assert!(!text.contains(dropped), "{dropped} in {text}");
        }
    }
}
