//! Generating API keys; their format and checks live in [`tessera_contracts::keys`].

use rand::RngCore;
use tessera_contracts::keys::{ID_HEX, PREFIX, SECRET_HEX};
pub use tessera_contracts::keys::{ParsedKey, hash_secret, parse, verify};

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
