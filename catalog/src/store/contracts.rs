//! Storing contract versions and quality runs.

use async_trait::async_trait;
use tessera_contracts::api::{
    ContractVersion, ContractVersionSummary, Health, QualityRun, QualityRunCreate, Violation,
};

use super::{PageRequest, Result};

/// A contract version to store.
#[derive(Debug, Clone)]
pub struct NewContract {
    pub version: semver::Version,
    pub api_version: Option<String>,
    pub media_type: String,
    pub document: String,
    /// What changed since the previous version of the same major.
    pub changes: Vec<Violation>,
}

/// Products' immutable contract versions, and the quality runs measured against them.
#[async_trait]
pub trait ContractStore: Send + Sync + 'static {
    async fn add_contract(
        &self,
        actor: &str,
        domain: &str,
        product: &str,
        new: &NewContract,
    ) -> Result<ContractVersion>;
    async fn list_contracts(
        &self,
        domain: &str,
        product: &str,
        page: &PageRequest,
    ) -> Result<Vec<ContractVersionSummary>>;
    async fn get_contract(&self, domain: &str, product: &str, version: &str) -> Result<Option<ContractVersion>>;
    /// Every version of a product's contract, documents included.
    async fn all_contracts(&self, domain: &str, product: &str) -> Result<Vec<ContractVersion>>;

    /// Stores a quality run and sets the product's health from it.
    async fn add_quality_run(
        &self,
        actor: &str,
        domain: &str,
        product: &str,
        run: &QualityRunCreate,
        health: Health,
    ) -> Result<QualityRun>;
    /// Quality runs, newest first.
    async fn list_quality_runs(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<QualityRun>>;
}
