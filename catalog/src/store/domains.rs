//! Storing business domains.

use async_trait::async_trait;
use tessera_contracts::api::{Domain, DomainCreate, DomainUpdate};

use super::{PageRequest, Result};

/// Domains and their owning teams.
#[async_trait]
pub trait DomainStore: Send + Sync + 'static {
    async fn create_domain(&self, actor: &str, new: &DomainCreate) -> Result<Domain>;
    async fn get_domain(&self, name: &str) -> Result<Option<Domain>>;
    async fn list_domains(&self, page: &PageRequest) -> Result<Vec<Domain>>;
    async fn update_domain(
        &self,
        actor: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &DomainUpdate,
    ) -> Result<Domain>;
    async fn delete_domain(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    /// The domains a principal owns through its teams, by name.
    async fn owned_domains(&self, name: &str) -> Result<Vec<String>>;
}
