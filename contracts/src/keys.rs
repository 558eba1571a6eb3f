//! API keys: `tsk_<id>_<secret>`, of which only a SHA-256 of the secret is stored.
//!
//! The secret has 256 bits of entropy, so a fast hash is enough: checking a key
//! costs microseconds, not an argon2 round per request. The catalog checks keys
//! against its store, gateways against the hashes in their policy bundle.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "tsk_";
pub const ID_HEX: usize = 12;
pub const SECRET_HEX: usize = 64;

/// A parsed key, borrowing from the presented string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Parses `tsk_<12 hex>_<64 hex>`; `None` for anything else.
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (lower_hex(id, ID_HEX) && lower_hex(secret, SECRET_HEX)).then_some(ParsedKey { id, secret })
}

/// The stored form of a secret: lower-case hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored hash in constant time.
pub fn verify(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_malformed_keys() {
        let good = format!("tsk_{}_{}", "a".repeat(12), "b".repeat(64));
        assert!(parse(&good).is_some());
        for bad in [
            String::new(),
            "tsk_".into(),
            format!("tsx_{}_{}", "a".repeat(12), "b".repeat(64)),
            format!("tsk_{}_{}", "a".repeat(11), "b".repeat(64)),
            format!("tsk_{}_{}", "a".repeat(12), "b".repeat(63)),
            format!("tsk_{}_{}", "A".repeat(12), "b".repeat(64)),
            format!("tsk_{}_{}_", "a".repeat(12), "b".repeat(64)),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn verifies_against_the_stored_hash() {
        let secret = "c".repeat(64);
        let stored = hash_secret(&secret);
        assert!(verify(&secret, &stored));
        assert!(!verify(&"0".repeat(64), &stored));
    }
}
