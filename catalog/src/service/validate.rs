//! What every use case shares: paging of listings and the checks of names,
//! lengths, tags, ports and addresses, which collect every invalid field.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_contracts::api::{FieldError, OutputPort, Page};
use tessera_contracts::names::{NAME_PATTERN, validate_name};

use super::error::{Error, Result};
use crate::store::PageRequest;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A listing's paging parameters as given.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page size as given, defaulted and checked.
pub(super) fn page_limit(limit: Option<i64>) -> Result<i64> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::field("limit", format!("must be between 1 and {MAX_LIMIT}")))
    }
}

impl Paging {
    pub(super) fn request(&self) -> Result<PageRequest> {
        let limit = page_limit(self.limit)?;
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| Error::Malformed("cursor is not one this API issued".into()))?,
            ),
        };
        Ok(PageRequest { after, limit })
    }
}

/// Cuts the store's `limit + 1` rows into a page and its cursor.
pub(super) fn page<T>(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Every row of a keyset-paginated store listing, page by page.
pub(super) async fn drain<T, F, Fut>(mut fetch: F, key: impl Fn(&T) -> String) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<Vec<T>>>,
{
    const BATCH: i64 = 500;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut rows = fetch(PageRequest { after, limit: BATCH }).await?;
        let more = rows.len() as i64 > BATCH;
        rows.truncate(BATCH as usize);
        after = rows.last().map(&key);
        out.extend(rows);
        if !more {
            return Ok(out);
        }
    }
}

pub(super) fn check_name(path: &str, name: &str) -> Result<(), FieldError> {
    validate_name(name).map_err(|e| FieldError {
        path: path.into(),
        message: format!("{name:?} {e} (pattern {NAME_PATTERN})"),
    })
}

pub(super) fn check_len(errors: &mut Vec<FieldError>, path: &str, value: Option<&String>, max: usize) {
    if let Some(v) = value
        && v.chars().count() > max
    {
        errors.push(FieldError {
            path: path.into(),
            message: format!("must be at most {max} characters"),
        });
    }
}

/// Refuses the request with every invalid field found, if any.
pub(super) fn finish(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Tags: short, non-empty, sorted and deduplicated.
pub(super) fn normalize_tags(errors: &mut Vec<FieldError>, path: &str, tags: &[String]) -> Vec<String> {
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.chars().count() > 64 || tag.chars().any(char::is_control) {
            errors.push(FieldError {
                path: format!("{path}[{i}]"),
                message: "a tag has 1 to 64 printable characters".into(),
            });
        }
    }
    if tags.len() > 64 {
        errors.push(FieldError {
            path: path.into(),
            message: "at most 64 tags".into(),
        });
    }
    tags.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

pub(super) fn check_ports(errors: &mut Vec<FieldError>, ports: &[OutputPort]) {
    let mut majors = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        if port.major_version == 0 {
            errors.push(FieldError {
                path: format!("output_ports[{i}].major_version"),
                message: "major versions start at 1".into(),
            });
        }
        if !majors.insert(port.major_version) {
            errors.push(FieldError {
                path: format!("output_ports[{i}].major_version"),
                message: format!("major version {} has more than one output port", port.major_version),
            });
        }
        let Some(location) = port.location.as_deref().map(str::trim) else {
            errors.push(FieldError {
                path: format!("output_ports[{i}].location"),
                message: "an output port needs the location of its Delta table".into(),
            });
            continue;
        };
        if location.is_empty() || location.len() > 2048 || location.chars().any(char::is_control) {
            errors.push(FieldError {
                path: format!("output_ports[{i}].location"),
                message: "a location is a non-empty path or URL of at most 2048 characters".into(),
            });
        }
    }
}

pub(super) fn check_inputs(errors: &mut Vec<FieldError>, inputs: &[String]) -> Vec<String> {
    for (i, input) in inputs.iter().enumerate() {
        if let Err(message) = tessera_contracts::names::parse_product_ref(input) {
            errors.push(FieldError {
                path: format!("input_ports[{i}]"),
                message,
            });
        }
    }
    inputs.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

pub(super) fn check_email(errors: &mut Vec<FieldError>, email: Option<&String>) {
    if let Some(email) = email {
        let valid = email.len() <= 320
            && email
                .split_once('@')
                .is_some_and(|(local, host)| !local.is_empty() && host.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            errors.push(FieldError {
                path: "email".into(),
                message: format!("{email:?} is not an e-mail address"),
            });
        }
    }
}

/// One invalid field.
pub(super) fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}
