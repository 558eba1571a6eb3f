//! The mesh's key for `hash` masks: created at first start, rotated by an
//! admin, carried by bundles and by nothing else the catalog answers or logs.

use rand::RngCore;
use tessera_contracts::bundle::MaskKey;

use super::{Catalog, Result};
use crate::authz::Caller;

/// A fresh key from the operating system's random source.
fn generate() -> MaskKey {
    let mut bytes = [0u8; MaskKey::LEN];
    rand::rng().fill_bytes(&mut bytes);
    MaskKey::from_bytes(bytes)
}

impl Catalog {
    /// Creates the mesh's mask key if there is none yet (first start, or the
    /// first start after an upgrade); another replica doing the same at the
    /// same moment is harmless: the first key stored stays.
    pub async fn ensure_mask_key(&self) -> Result<()> {
        self.store.put_mask_key("system", &generate(), false).await?;
        Ok(())
    }

    /// Replaces the mesh's mask key (admins): in force on every gateway with
    /// the next bundle. Masked values change; within one bundle version equal
    /// values still give equal masked values, so joins on them still match.
    pub async fn rotate_mask_key(&self, caller: &Caller) -> Result<()> {
        self.authz.require_admin(caller)?;
        self.store.put_mask_key(caller.name(), &generate(), true).await?;
        Ok(())
    }
}
