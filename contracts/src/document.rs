//! Contract documents as submitted: YAML or JSON, stored byte for byte.
//!
//! The document is kept byte for byte; [`crate::odcs`] reads it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
