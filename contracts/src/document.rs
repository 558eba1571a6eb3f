//! Contract documents as submitted: YAML or JSON, stored byte for byte.
//!
//! The full ODCS model comes later; what the catalog needs now is the document's
//! format, that it parses, and its semantic version.

use serde_json::Value;

/// The format a contract document was submitted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    Yaml,
    Json,
}

impl DocumentFormat {
    /// The media type the document is served back with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Yaml => "application/yaml",
            Self::Json => "application/json",
        }
    }

    /// Picks the format from a `Content-Type` header value; `None` when unsupported.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Some(Self::Yaml),
            _ => None,
        }
    }
}

/// What the catalog reads from a contract document at submission.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractHeader {
    pub version: semver::Version,
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub id: Option<String>,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("document is not valid {format}: {message}")]
    Syntax { format: &'static str, message: String },
    #[error("document must be a mapping at the top level")]
    NotAnObject,
    #[error("{path}: {message}")]
    Field { path: &'static str, message: String },
}

/// Parses a submitted document and reads its header fields.
pub fn read_header(format: DocumentFormat, text: &str) -> Result<ContractHeader, DocumentError> {
    let value: Value = match format {
        DocumentFormat::Json => serde_json::from_str(text).map_err(|e| DocumentError::Syntax {
            format: "JSON",
            message: e.to_string(),
        })?,
        DocumentFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| DocumentError::Syntax {
            format: "YAML",
            message: e.to_string(),
        })?,
    };
    let object = value.as_object().ok_or(DocumentError::NotAnObject)?;
    let string = |path: &'static str| -> Result<Option<String>, DocumentError> {
        match object.get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(DocumentError::Field {
                path,
                message: format!("must be a string, got {}", type_name(other)),
            }),
        }
    };
    let raw_version = string("version")?.ok_or(DocumentError::Field {
        path: "version",
        message: "is required".into(),
    })?;
    let version = semver::Version::parse(&raw_version).map_err(|e| DocumentError::Field {
        path: "version",
        message: format!("{raw_version:?} is not a semantic version (MAJOR.MINOR.PATCH): {e}"),
    })?;
    Ok(ContractHeader {
        version,
        api_version: string("apiVersion")?,
        kind: string("kind")?,
        id: string("id")?,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_and_json() {
        let yaml = "apiVersion: v3.1.0\nkind: DataContract\nid: orders\nversion: 1.2.3\n";
        let h = read_header(DocumentFormat::Yaml, yaml).expect("valid");
        assert_eq!(h.version, semver::Version::new(1, 2, 3));
        assert_eq!(h.api_version.as_deref(), Some("v3.1.0"));
        let json = r#"{"kind":"DataContract","version":"2.0.0-rc.1"}"#;
        let h = read_header(DocumentFormat::Json, json).expect("valid");
        assert_eq!(h.version.to_string(), "2.0.0-rc.1");
        assert_eq!(h.id, None);
    }

    #[test]
    fn says_what_is_wrong() {
        let e = read_header(DocumentFormat::Yaml, "version: [1").expect_err("bad yaml");
        assert!(matches!(e, DocumentError::Syntax { format: "YAML", .. }), "{e}");
        let e = read_header(DocumentFormat::Json, "[1]").expect_err("not object");
        assert_eq!(e, DocumentError::NotAnObject);
        let e = read_header(DocumentFormat::Json, "{}").expect_err("no version");
        assert_eq!(e.to_string(), "version: is required");
        let e = read_header(DocumentFormat::Yaml, "version: 1.2").expect_err("float");
        assert_eq!(e.to_string(), "version: must be a string, got a number");
        let e = read_header(DocumentFormat::Yaml, "version: 'v1'").expect_err("not semver");
        assert!(
            e.to_string().starts_with("version: \"v1\" is not a semantic version"),
            "{e}"
        );
    }

    #[test]
    fn the_published_pattern_agrees_with_the_parser() {
        // The OpenAPI document promises this pattern; the parser must accept
        // exactly what it matches.
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(crate::api::ContractDocument::schema()).expect("schema");
        let pattern = crate::api::SEMVER_PATTERN;
        assert_eq!(schema["properties"]["version"]["pattern"], pattern);
        let re = regex::Regex::new(pattern).expect("valid regex");
        for version in [
            "1.0.0",
            "0.1.2-rc.1+build.5",
            "10.20.30",
            "1.0.0-alpha.beta",
            "01.0.0",
            "1.2",
            "1.0.0-01",
            "v1.0.0",
            "1.0.0+",
            " 1.0.0",
            "1.0.0-x-y.z",
        ] {
            assert_eq!(
                semver::Version::parse(version).is_ok(),
                re.is_match(version),
                "{version}"
            );
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            DocumentFormat::from_content_type("application/json; charset=utf-8"),
            Some(DocumentFormat::Json)
        );
        assert_eq!(
            DocumentFormat::from_content_type("Application/YAML"),
            Some(DocumentFormat::Yaml)
        );
        assert_eq!(DocumentFormat::from_content_type("text/plain"), None);
    }
}
