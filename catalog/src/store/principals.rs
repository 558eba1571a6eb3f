//! Storing principals and their API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_contracts::api::{ApiKey, Attributes, Principal, PrincipalKind, PrincipalUpdate};

use super::{PageRequest, Result};

/// A principal to create.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub kind: PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
    pub admin: bool,
    pub roles: Vec<tessera_contracts::api::Role>,
    pub attributes: Attributes,
}

/// An API key to store: only the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub principal: String,
    pub secret_hash: String,
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored key, as authentication needs it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub key: ApiKey,
    pub secret_hash: String,
}

/// Principals (users and service accounts) and their API keys.
#[async_trait]
pub trait PrincipalStore: Send + Sync + 'static {
    async fn admin_exists(&self) -> Result<bool>;
    async fn create_principal(&self, actor: &str, new: &NewPrincipal) -> Result<Principal>;
    async fn get_principal(&self, name: &str) -> Result<Option<Principal>>;
    async fn list_principals(&self, page: &PageRequest) -> Result<Vec<Principal>>;
    async fn update_principal(
        &self,
        actor: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &PrincipalUpdate,
    ) -> Result<Principal>;
    async fn delete_principal(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;

    /// Stores a key; also used once at start-up for the bootstrap admin key.
    async fn create_api_key(&self, actor: &str, new: &NewApiKey) -> Result<ApiKey>;
    async fn list_api_keys(&self, principal: &str, page: &PageRequest) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, actor: &str, principal: &str, id: &str) -> Result<ApiKey>;
    async fn find_api_key(&self, id: &str) -> Result<Option<StoredKey>>;
    /// Every key that is not revoked, with its hash (for policy bundles).
    async fn live_keys(&self) -> Result<Vec<StoredKey>>;
}
