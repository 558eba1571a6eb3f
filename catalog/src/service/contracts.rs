//! Contracts: registration behind the compatibility gate, verification
//! against the Delta table, and the quality runs measured against them.

use tessera_contracts::api::{
    ContractVersion, ContractVersionSummary, FieldError, Health, Page, Product, QualityRun, QualityRunCreate,
    Verification,
};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs::{self, compat};

use super::validate::{finish, page};
use super::{Catalog, Error, Paging, Result, Stage};
use crate::authz::Caller;
use crate::store::NewContract;

impl Catalog {
    pub async fn add_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<ContractVersion> {
        let owned = self.owned_product(caller, domain, product).await?;
        let format = content_type
            .and_then(DocumentFormat::from_content_type)
            .ok_or_else(|| {
                Error::UnsupportedFormat("a contract is submitted as application/yaml or application/json".into())
            })?;
        let text = std::str::from_utf8(body)
            .map_err(|_| Error::Malformed("the contract document is not UTF-8 text".into()))?;
        let contract = read_contract(format, text)?;
        let version = semver::Version::parse(&contract.version).map_err(|e| Error::field("version", e.to_string()))?;

        // Compatibility with the latest earlier version of the same major.
        let previous = self
            .store
            .all_contracts(domain, product)
            .await?
            .into_iter()
            .filter_map(|c| semver::Version::parse(&c.version).ok().map(|v| (v, c)))
            .filter(|(v, _)| v.major == version.major && *v < version)
            .max_by(|a, b| a.0.cmp(&b.0));
        let mut changes = Vec::new();
        if let Some((previous_version, stored)) = previous
            && let Some(format) = DocumentFormat::from_content_type(&stored.media_type)
            && let Ok(old) = odcs::parse(format, &stored.document)
        {
            let report = compat::compare(&old, &contract, owned.compatibility);
            if report.is_breaking() {
                let violations: Vec<_> = report.breaking().cloned().collect();
                return Err(Error::Breaking {
                    detail: format!(
                        "{} breaking change(s) from {previous_version} to {version} under compatibility mode {:?}: \
                         publish them as {}.0.0, a new major version",
                        violations.len(),
                        owned.compatibility.as_str(),
                        version.major + 1
                    ),
                    violations,
                });
            }
            changes = report.changes;
        }

        // The contract must describe its table, where the table already exists.
        if let Some(verification) = self.verify_against_table(&owned, &contract, true).await?
            && !verification.mismatches.is_empty()
        {
            return Err(Error::TableMismatch {
                stage: Stage::Submission,
                detail: format!(
                    "the Delta table at {} does not match the contract: {}",
                    verification.location,
                    verification
                        .mismatches
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                mismatches: verification.mismatches,
            });
        }
        let new = NewContract {
            version,
            api_version: Some(contract.api_version.clone()),
            media_type: format.media_type().to_string(),
            document: text.to_string(),
            changes,
        };
        Ok(self.store.add_contract(caller.name(), domain, product, &new).await?)
    }

    /// Verifies a contract against the Delta table of its major version's output
    /// port; `None` when the product has no port for that major version. The
    /// table's location shows, in the answer and in errors, to `owner`s only.
    async fn verify_against_table(
        &self,
        product: &Product,
        contract: &odcs::DataContract,
        owner: bool,
    ) -> Result<Option<Verification>> {
        let major = semver::Version::parse(&contract.version)
            .map(|v| v.major)
            .unwrap_or_default();
        let Some(location) = product
            .output_ports
            .iter()
            .find(|p| u64::from(p.major_version) == major)
            .and_then(|p| p.location.as_deref())
        else {
            return Ok(None);
        };
        let options = tessera_lake::storage_options_for(&self.storage, location);
        let meta = tessera_lake::table_meta(location, &options).await.map_err(|e| {
            let path = format!("output_ports[major_version={major}]");
            if owner {
                Error::field(path, e.to_string())
            } else {
                // The error names the location: only the log gets it.
                tracing::warn!(product = %format!("{}.{}", product.domain, product.name), error = %e,
                    "cannot read a product's table");
                Error::field(path, "the product's Delta table cannot be read")
            }
        })?;
        let shown = if owner { location.to_string() } else { String::new() };
        let Some(meta) = meta else {
            return Ok(Some(Verification {
                contract_version: contract.version.clone(),
                location: shown,
                table_version: None,
                table_exists: false,
                mismatches: Vec::new(),
            }));
        };
        let mismatches = match contract.schema.as_deref() {
            Some([object, ..]) => odcs::arrow::verify(object, &meta.schema, &meta.partition_columns),
            _ => vec![tessera_contracts::api::Mismatch {
                rule: "missing-schema".into(),
                path: "schema".into(),
                expected: "a schema object describing the output port".into(),
                actual: format!("a table of {} columns", meta.schema.fields().len()),
            }],
        };
        Ok(Some(Verification {
            contract_version: contract.version.clone(),
            location: shown,
            table_version: Some(meta.version),
            table_exists: true,
            mismatches,
        }))
    }

    /// Verifies a stored contract version against the product's table, on demand.
    pub async fn verify_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        version: &str,
    ) -> Result<Verification> {
        let (owning, found) = self.visible_product(caller, domain, product).await?;
        let owner = self.authz.owns_product(caller, &owning, &found);
        let stored = self.get_contract(caller, domain, product, version).await?;
        let contract = stored_contract(&stored)?;
        self.verify_against_table(&found, &contract, owner)
            .await?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "{domain}.{product} has no output port for major version {}",
                    contract.version.split('.').next().unwrap_or("?")
                ))
            })
    }

    /// Publication needs the latest contract's table to exist and match it.
    pub(super) async fn check_publishable(&self, product: &Product) -> Result<()> {
        let Some(latest) = &product.latest_contract_version else {
            return Ok(()); // the store refuses it, with its own message
        };
        let stored = self
            .store
            .get_contract(&product.domain, &product.name, latest)
            .await?
            .ok_or_else(|| Error::NotFound(format!("contract version {latest}")))?;
        let contract = stored_contract(&stored)?;
        let refuse = |detail: String, mismatches| Error::TableMismatch {
            stage: Stage::Publication,
            detail,
            mismatches,
        };
        match self.verify_against_table(product, &contract, true).await? {
            None => Err(refuse(
                format!(
                    "{}.{} cannot be published: it has no output port for major version {} of its contract",
                    product.domain,
                    product.name,
                    latest.split('.').next().unwrap_or("?")
                ),
                Vec::new(),
            )),
            Some(v) if !v.table_exists => Err(refuse(
                format!(
                    "{}.{} cannot be published: there is no Delta table at {}",
                    product.domain, product.name, v.location
                ),
                Vec::new(),
            )),
            Some(v) if !v.mismatches.is_empty() => Err(refuse(
                format!(
                    "{}.{} cannot be published: its table does not match contract {latest}",
                    product.domain, product.name
                ),
                v.mismatches,
            )),
            Some(_) => Ok(()),
        }
    }

    // ------------------------------------------------------------ quality

    pub async fn add_quality_run(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        run: QualityRunCreate,
    ) -> Result<QualityRun> {
        self.owned_product(caller, domain, product).await?;
        let mut errors = Vec::new();
        if run.results.len() > 10_000 {
            errors.push(FieldError {
                path: "results".into(),
                message: "at most 10000 results".into(),
            });
        }
        for (i, r) in run.results.iter().enumerate() {
            for (field, value, max) in [("key", &r.key, 500), ("path", &r.path, 500), ("rule", &r.rule, 100)] {
                if value.is_empty() || value.chars().count() > max {
                    errors.push(FieldError {
                        path: format!("results[{i}].{field}"),
                        message: format!("must have 1 to {max} characters"),
                    });
                }
            }
            if r.measured.is_some_and(|m| !m.is_finite()) {
                errors.push(FieldError {
                    path: format!("results[{i}].measured"),
                    message: "must be a finite number".into(),
                });
            }
        }
        finish(errors)?;
        let health = Health::of(&run.results);
        Ok(self
            .store
            .add_quality_run(caller.name(), domain, product, &run, health)
            .await?)
    }

    pub async fn list_quality_runs(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<QualityRun>> {
        self.visible_product(caller, domain, product).await?;
        let request = paging.request()?;
        let rows = self.store.list_quality_runs(domain, product, &request).await?;
        Ok(page(rows, &request, |r| r.id.to_string()))
    }

    pub async fn list_contracts(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<ContractVersionSummary>> {
        self.visible_product(caller, domain, product).await?;
        let request = paging.request()?;
        let rows = self.store.list_contracts(domain, product, &request).await?;
        Ok(page(rows, &request, |c| c.version.clone()))
    }

    pub async fn get_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        version: &str,
    ) -> Result<ContractVersion> {
        self.visible_product(caller, domain, product).await?;
        self.store
            .get_contract(domain, product, version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("contract version {version} of {domain}.{product} not found")))
    }
}

/// Reads a submitted contract: 400 for a document that is not YAML/JSON, 422 with
/// every issue and its path for one that is not a valid ODCS contract.
fn read_contract(format: DocumentFormat, text: &str) -> Result<odcs::DataContract> {
    odcs::read(format, text).map_err(|e| match e {
        odcs::ReadError::Syntax { format, message } => {
            Error::Malformed(format!("the contract is not valid {format}: {message}"))
        }
        odcs::ReadError::Invalid(issues) => Error::Invalid(
            issues
                .into_iter()
                .map(|i| FieldError {
                    path: i.path,
                    message: i.message,
                })
                .collect(),
        ),
    })
}

/// Reads a stored contract version (stored only after it was read once).
pub(super) fn stored_contract(stored: &ContractVersion) -> Result<odcs::DataContract> {
    let format = DocumentFormat::from_content_type(&stored.media_type)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored media type {}", stored.media_type)))?;
    odcs::parse(format, &stored.document).map_err(|e| {
        Error::Conflict(format!(
            "contract version {} predates ODCS validation and cannot be read: {e}",
            stored.version
        ))
    })
}
