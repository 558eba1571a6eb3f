//! API keys: `tsk_<id>_<secret>`, of which only a SHA-256 of the secret is stored.
//!
//! The secret has 256 bits of entropy, so a fast hash is enough: checking a key
//! costs microseconds, not an argon2 round per request.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "tsk_";
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// A parsed key, borrowing from the presented string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// A freshly generated key: the full key (shown once) and what is stored.
pub struct GeneratedKey {
    pub id: String,
    pub key: String,
    pub secret_hash: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

/// Generates a key from the operating system's random source.
pub fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    GeneratedKey {
        key: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    }
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
    fn generated_keys_parse_and_verify() {
        let k = generate();
        let parsed = parse(&k.key).expect("own format");
        assert_eq!(parsed.id, k.id);
        assert!(verify(parsed.secret, &k.secret_hash));
        assert!(!verify(&"0".repeat(64), &k.secret_hash));
        assert_ne!(generate().key, k.key);
    }

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
}
