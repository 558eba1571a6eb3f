//! Open Data Contract Standard (ODCS) v3: the model, reading and writing YAML and
//! JSON, validation with precise paths, the mapping to Arrow, compatibility
//! between versions, and quality rules compiled to SQL.

pub mod arrow;
pub mod compat;
mod model;
pub mod quality;
pub mod served;
mod validate;

pub use model::*;
pub use validate::validate;

use crate::document::DocumentFormat;

/// The ODCS versions Tessera reads and writes.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["v3.1.0", "v3.2.0"];

/// One problem found in a contract, at a path such as
/// `schema[0].properties[3].logicalType`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not YAML / JSON at all.
    #[error("not valid {format}: {message}")]
    Syntax { format: &'static str, message: String },
    /// Well-formed, but not an ODCS contract (wrong types, unknown fields, ...).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Issue>),
}

/// Reads a contract and validates it; the issues name their paths.
pub fn read(format: DocumentFormat, text: &str) -> Result<DataContract, ReadError> {
    let contract = parse(format, text)?;
    let issues = validate(&contract);
    if issues.is_empty() {
        Ok(contract)
    } else {
        Err(ReadError::Invalid(issues))
    }
}

/// Reads a contract without validating more than its shape.
pub fn parse(format: DocumentFormat, text: &str) -> Result<DataContract, ReadError> {
    match format {
        DocumentFormat::Json => {
            check_nesting("JSON", text)?;
            let mut de = serde_json::Deserializer::from_str(text);
            let result = serde_path_to_error::deserialize::<_, DataContract>(&mut de);
            match result {
                Ok(contract) => de.end().map(|()| contract).map_err(|e| ReadError::Syntax {
                    format: "JSON",
                    message: e.to_string(),
                }),
                Err(e) if e.inner().is_syntax() || e.inner().is_eof() => Err(ReadError::Syntax {
                    format: "JSON",
                    message: e.inner().to_string(),
                }),
                Err(e) => Err(ReadError::Invalid(vec![Issue::new(
                    path_of(e.path()),
                    strip_position(&e.inner().to_string()),
                )])),
            }
        }
        DocumentFormat::Yaml => {
            check_nesting("YAML", text)?;
            // YAML syntax errors come out of the same deserializer: tell them
            // apart by parsing the text as a generic value first.
            if let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
                return Err(ReadError::Syntax {
                    format: "YAML",
                    message: e.to_string(),
                });
            }
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, DataContract>(de).map_err(|e| {
                ReadError::Invalid(vec![Issue::new(
                    path_of(e.path()),
                    strip_position(&e.inner().to_string()),
                )])
            })
        }
    }
}

/// Writes a contract in the given format.
pub fn write(format: DocumentFormat, contract: &DataContract) -> String {
    match format {
        DocumentFormat::Json => serde_json::to_string_pretty(contract).unwrap_or_default(),
        DocumentFormat::Yaml => serde_yaml_ng::to_string(contract).unwrap_or_default(),
    }
}

fn path_of(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p == "." { String::new() } else { p }
}

/// serde's messages end in " at line L column C" (JSON) or start with the
/// YAML parser's own path ("schema[0].properties[2]: "): the issue's path says
/// where, once.
fn strip_position(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    match message.split_once(": ") {
        Some((head, rest))
            if !head.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')) =>
        {
            rest.to_string()
        }
        _ => message.to_string(),
    }
}

/// Deepest nesting of a document. Parsers bound their recursion, but a YAML
/// parser can spend minutes on 100 000 nested brackets before it gets there:
/// refuse such input before parsing.
pub const MAX_NESTING: usize = 64;

fn check_nesting(format: &'static str, text: &str) -> Result<(), ReadError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ReadError::Syntax {
                        format,
                        message: format!("nested deeper than {MAX_NESTING} levels"),
                    });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Block-style YAML nests by indentation.
    if text.lines().any(|l| l.len() - l.trim_start().len() > 2 * MAX_NESTING) {
        return Err(ReadError::Syntax {
            format,
            message: format!("indented deeper than {MAX_NESTING} levels"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
