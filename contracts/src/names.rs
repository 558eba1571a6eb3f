//! Names of domains, products, teams and principals.
//!
//! Domain and product names become SQL identifiers in the gateway
//! (`<domain>.<product>`), so every name is a lower-case identifier that needs no
//! quoting in SQL.

/// The pattern every name matches, as published in the OpenAPI document.
pub const NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,62}$";

/// The longest name accepted.
pub const NAME_MAX_LEN: usize = 63;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {NAME_MAX_LEN} characters, got {0}")]
    TooLong(usize),
    #[error("must start with a lower-case letter a-z")]
    BadStart,
    #[error("may contain only a-z, 0-9 and '_', found {0:?}")]
    BadChar(char),
}

/// Checks that `name` matches [`NAME_PATTERN`].
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let first = chars.next().ok_or(NameError::Empty)?;
    if !first.is_ascii_lowercase() {
        return Err(NameError::BadStart);
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(NameError::BadChar(bad));
    }
    if name.len() > NAME_MAX_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    Ok(())
}

/// Splits a product reference `domain.product` into its two validated names.
pub fn parse_product_ref(reference: &str) -> Result<(&str, &str), String> {
    let (domain, product) = reference
        .split_once('.')
        .ok_or_else(|| format!("{reference:?} is not of the form <domain>.<product>"))?;
    validate_name(domain).map_err(|e| format!("domain of {reference:?} {e}"))?;
    validate_name(product).map_err(|e| format!("product of {reference:?} {e}"))?;
    Ok((domain, product))
}

/// The major version of a contract version (`2.1.0` and `v2.1.0` give 2);
/// `None` when it does not start with a number.
pub fn major_of(version: &str) -> Option<u64> {
    version.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_of_versions() {
        assert_eq!(major_of("2.1.0"), Some(2));
        assert_eq!(major_of("10.0.0-rc.1"), Some(10));
        assert_eq!(major_of("x"), None);
    }

    #[test]
    fn accepts_identifiers() {
        for ok in ["a", "sales", "line_item2", &"x".repeat(63)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_sql_would_need_quoted() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("Sales"), Err(NameError::BadStart));
        assert_eq!(validate_name("1sales"), Err(NameError::BadStart));
        assert_eq!(validate_name("_x"), Err(NameError::BadStart));
        assert_eq!(validate_name("sales-eu"), Err(NameError::BadChar('-')));
        assert_eq!(validate_name("a.b"), Err(NameError::BadChar('.')));
        assert_eq!(validate_name("caf\u{e9}"), Err(NameError::BadChar('\u{e9}')));
        assert_eq!(validate_name(&"x".repeat(64)), Err(NameError::TooLong(64)));
    }

    #[test]
    fn product_refs() {
        assert_eq!(parse_product_ref("sales.orders"), Ok(("sales", "orders")));
        assert!(parse_product_ref("orders").is_err());
        assert!(parse_product_ref("sales.Orders").is_err());
        assert!(parse_product_ref("sales.orders.x").is_err());
    }
}
