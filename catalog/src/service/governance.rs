//! Governance use cases: policies (grants, masks, row filters), their checks,
//! and the policy half of the bundle. Access requests are in `access`, gateways'
//! reports and query audit in `gateways`.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_contracts::api::{ContractVersion, FieldError, Page, Product};
use tessera_contracts::bundle::BundlePort;
use tessera_contracts::names::validate_name;
use tessera_contracts::odcs;
use tessera_contracts::policy::{
    ColumnSelector, GrantSpec, MaskFunction, MaskSpec, PolicyColumn, RowFilterSpec, Subject, Target,
};

use super::contracts::stored_contract;
use super::validate::{check_name, field, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;
use crate::store::{NewPolicy, PolicyKind, StoredPolicy};

/// The three policy specs, handled alike.
pub trait PolicySpec: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: PolicyKind;
    fn name(&self) -> &str;
    /// The one domain the policy lies in: its owners manage it. None: admins only.
    fn domain(&self) -> Option<&str>;
    fn as_ref(&self) -> PolicyRef<'_>;
}

/// One policy spec, whichever kind.
pub enum PolicyRef<'a> {
    Grant(&'a GrantSpec),
    Mask(&'a MaskSpec),
    RowFilter(&'a RowFilterSpec),
}

impl PolicySpec for GrantSpec {
    const KIND: PolicyKind = PolicyKind::Grant;
    fn as_ref(&self) -> PolicyRef<'_> {
        PolicyRef::Grant(self)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn domain(&self) -> Option<&str> {
        self.target.domain()
    }
}

impl PolicySpec for MaskSpec {
    const KIND: PolicyKind = PolicyKind::Mask;
    fn as_ref(&self) -> PolicyRef<'_> {
        PolicyRef::Mask(self)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn domain(&self) -> Option<&str> {
        self.target.domain()
    }
}

impl PolicySpec for RowFilterSpec {
    const KIND: PolicyKind = PolicyKind::RowFilter;
    fn as_ref(&self) -> PolicyRef<'_> {
        PolicyRef::RowFilter(self)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn domain(&self) -> Option<&str> {
        Some(&self.domain)
    }
}

/// A stored policy with its spec read back.
pub struct Typed<T> {
    pub spec: T,
    pub stored: StoredPolicy,
}

fn typed<T: PolicySpec>(stored: StoredPolicy) -> Result<Typed<T>> {
    let spec = serde_json::from_value(stored.spec.clone())
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored {} {:?}: {e}", T::KIND.noun(), stored.name)))?;
    Ok(Typed { spec, stored })
}

impl Catalog {
    /// Whether the caller may write policies lying in `domain` (None: mesh-wide).
    pub(super) async fn may_manage(&self, caller: &Caller, domain: Option<&str>) -> Result<bool> {
        if caller.is_admin() {
            return Ok(true);
        }
        let Some(domain) = domain else { return Ok(false) };
        Ok(match self.store.get_domain(domain).await? {
            Some(d) => self.authz.owns_domain(caller, &d),
            None => false,
        })
    }

    async fn require_manage(&self, caller: &Caller, domain: Option<&str>) -> Result<()> {
        if self.may_manage(caller, domain).await? {
            Ok(())
        } else {
            Err(Error::Forbidden(match domain {
                Some(d) => format!("only platform admins and the owners of domain {d:?} manage its policies"),
                None => "only platform admins manage policies spanning the mesh".into(),
            }))
        }
    }

    /// The latest contract of each major version of a product: major -> schema object.
    async fn schemas_by_major(&self, domain: &str, product: &str) -> Result<BTreeMap<u32, odcs::SchemaObject>> {
        Ok(schemas_by_major(&self.store.all_contracts(domain, product).await?))
    }

    /// Every policy, typed, for the bundle.
    async fn bundle_policies(&self) -> Result<(Vec<GrantSpec>, Vec<MaskSpec>, Vec<RowFilterSpec>)> {
        bundle_policies(self.store.all_policies().await?)
    }

    /// What a caller's live grants cover, for catalog visibility.
    pub(super) async fn granted_targets(
        &self,
        principal: &tessera_contracts::api::Principal,
        teams: &[String],
    ) -> Result<Vec<Target>> {
        let asker = tessera_contracts::policy::Asker {
            name: &principal.name,
            admin: principal.admin,
            attributes: &principal.attributes,
            teams,
            purpose: None,
        };
        let now = Utc::now();
        let (grants, _, _) = self.bundle_policies().await?;
        Ok(grants
            .into_iter()
            .filter(|g| g.expires_at.is_none_or(|at| at > now) && g.subject.matches(&asker))
            .map(|g| g.target)
            .collect())
    }

    // ------------------------------------------------------------ validation

    async fn check_target(&self, errors: &mut Vec<FieldError>, target: &Target) -> Result<()> {
        match target {
            Target::Product { domain, product } => {
                if self.store.get_product(domain, product).await?.is_none() {
                    errors.push(field("target", format!("product {domain}.{product} not found")));
                }
            }
            Target::Domain { domain } => {
                if self.store.get_domain(domain).await?.is_none() {
                    errors.push(field("target.domain", format!("domain {domain:?} not found")));
                }
            }
            Target::Tag { tag } => {
                if tag.is_empty() || tag.len() > 64 {
                    errors.push(field("target.tag", "must have 1 to 64 characters"));
                }
            }
            Target::All => {}
        }
        Ok(())
    }

    fn check_purposes(errors: &mut Vec<FieldError>, path: &str, purposes: &[String]) {
        for (i, p) in purposes.iter().enumerate() {
            if let Err(e) = validate_name(p) {
                errors.push(field(&format!("{path}[{i}]"), e.to_string()));
            }
        }
    }

    async fn check_grant(&self, grant: &GrantSpec) -> Result<()> {
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &grant.name) {
            errors.push(e);
        }
        match &grant.subject {
            Subject::Principal { name } => {
                if self.store.get_principal(name).await?.is_none() {
                    errors.push(field("subject.name", format!("principal {name:?} not found")));
                }
            }
            Subject::Group { name } | Subject::Attribute { value: name, .. } => {
                if name.is_empty() || name.len() > 128 {
                    errors.push(field("subject", "must name 1 to 128 characters"));
                }
            }
        }
        self.check_target(&mut errors, &grant.target).await?;
        Self::check_purposes(&mut errors, "purposes", &grant.purposes);
        if grant.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.push(field("expires_at", "must be in the future"));
        }
        finish(errors)
    }

    async fn check_mask(&self, mask: &MaskSpec) -> Result<()> {
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &mask.name) {
            errors.push(e);
        }
        self.check_target(&mut errors, &mask.target).await?;
        if let MaskFunction::Partial { keep } = mask.function
            && !(1..=64).contains(&keep)
        {
            errors.push(field("function.keep", "must be 1 to 64"));
        }
        match &mask.columns {
            ColumnSelector::Classification { classification } if classification.is_empty() => {
                errors.push(field("columns.classification", "must not be empty"));
            }
            ColumnSelector::Column { column } => {
                if let Target::Product { domain, product } = &mask.target {
                    let schemas = self.schemas_by_major(domain, product).await?;
                    let known = schemas.values().any(|o| {
                        o.properties
                            .iter()
                            .flatten()
                            .any(|p| odcs::arrow::column_name(p) == Some(column.as_str()))
                    });
                    if !known {
                        errors.push(field(
                            "columns.column",
                            format!("{domain}.{product} has no column {column:?} in any contract"),
                        ));
                    }
                } else if column.is_empty() {
                    errors.push(field("columns.column", "must not be empty"));
                }
            }
            ColumnSelector::Classification { .. } => {}
        }
        finish(errors)
    }

    async fn check_row_filter(&self, filter: &RowFilterSpec) -> Result<()> {
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &filter.name) {
            errors.push(e);
        }
        if filter.expression.chars().count() > 8192 {
            errors.push(field("expression", "at most 8192 characters"));
            return finish(errors);
        }
        if self.store.get_product(&filter.domain, &filter.product).await?.is_none() {
            errors.push(field(
                "product",
                format!("product {}.{} not found", filter.domain, filter.product),
            ));
            return finish(errors);
        }
        let schemas = self.schemas_by_major(&filter.domain, &filter.product).await?;
        if schemas.is_empty() {
            errors.push(field(
                "expression",
                format!(
                    "{}.{} has no contract yet: a row filter is checked against the contract's schema",
                    filter.domain, filter.product
                ),
            ));
        }
        for (major, object) in &schemas {
            let schema = odcs::arrow::object_schema(object).map_err(|e| {
                Error::Conflict(format!(
                    "the contract of major version {major} has no usable schema: {e}"
                ))
            })?;
            if let Err(e) = tessera_policy::check(&filter.expression, &schema) {
                errors.push(field(
                    "expression",
                    format!("against major version {major}'s contract: {e}"),
                ));
            }
        }
        Self::check_purposes(&mut errors, "exempt.purposes", &filter.exempt.purposes);
        finish(errors)
    }

    async fn check_policy<T: PolicySpec>(&self, spec: &T) -> Result<()> {
        match spec.as_ref() {
            PolicyRef::Grant(g) => self.check_grant(g).await,
            PolicyRef::Mask(m) => self.check_mask(m).await,
            PolicyRef::RowFilter(f) => self.check_row_filter(f).await,
        }
    }

    pub(super) fn new_policy<T: PolicySpec>(spec: &T) -> Result<NewPolicy> {
        Ok(NewPolicy {
            kind: T::KIND,
            name: spec.name().to_string(),
            domain: spec.domain().map(str::to_string),
            spec: serde_json::to_value(spec).map_err(|e| Error::Internal(e.into()))?,
        })
    }

    // ------------------------------------------------------------ policies

    pub async fn create_policy<T: PolicySpec>(&self, caller: &Caller, spec: T) -> Result<Typed<T>> {
        self.require_manage(caller, spec.domain()).await?;
        self.check_policy(&spec).await?;
        let stored = self
            .store
            .create_policy(caller.name(), &Self::new_policy(&spec)?)
            .await?;
        typed(stored)
    }

    pub async fn replace_policy<T: PolicySpec>(
        &self,
        caller: &Caller,
        name: &str,
        spec: T,
        if_match: Option<i64>,
    ) -> Result<Typed<T>> {
        if spec.name() != name {
            return Err(Error::Invalid(vec![field("name", "must be the name in the path")]));
        }
        let current = self.get_policy::<T>(caller, name).await?;
        self.require_manage(caller, current.spec.domain()).await?;
        self.require_manage(caller, spec.domain()).await?;
        self.check_policy(&spec).await?;
        let stored = self
            .store
            .replace_policy(caller.name(), &Self::new_policy(&spec)?, if_match)
            .await?;
        typed(stored)
    }

    pub async fn get_policy<T: PolicySpec>(&self, caller: &Caller, name: &str) -> Result<Typed<T>> {
        let not_found = || Error::NotFound(format!("{} {name:?} not found", T::KIND.noun()));
        let stored = self.store.get_policy(T::KIND, name).await?.ok_or_else(not_found)?;
        if !self.may_manage(caller, stored.domain.as_deref()).await? {
            return Err(not_found());
        }
        typed(stored)
    }

    /// Admins list every policy; domain owners list their domain's (`domain` required).
    pub async fn list_policies<T: PolicySpec>(
        &self,
        caller: &Caller,
        domain: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<Typed<T>>> {
        if !caller.is_admin() {
            let Some(d) = domain else {
                return Err(Error::Forbidden(
                    "only platform admins list every policy; domain owners pass ?domain=".into(),
                ));
            };
            self.require_manage(caller, Some(d)).await?;
        }
        let request = paging.request()?;
        let rows = self.store.list_policies(T::KIND, domain, &request).await?;
        let typed_rows = rows.into_iter().map(typed).collect::<Result<Vec<_>, _>>()?;
        Ok(page(typed_rows, &request, |t| t.stored.name.clone()))
    }

    pub async fn delete_policy<T: PolicySpec>(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<()> {
        let current = self.get_policy::<T>(caller, name).await?;
        self.require_manage(caller, current.spec.domain()).await?;
        Ok(self.store.delete_policy(caller.name(), T::KIND, name, if_match).await?)
    }
}

/// The schema object of the latest contract version of each major, from a
/// product's contract versions. Only those documents are parsed.
fn schemas_by_major(contracts: &[ContractVersion]) -> BTreeMap<u32, odcs::SchemaObject> {
    let mut latest: BTreeMap<u32, (semver::Version, &ContractVersion)> = BTreeMap::new();
    for stored in contracts {
        let Ok(version) = semver::Version::parse(&stored.version) else {
            continue;
        };
        let major = u32::try_from(version.major).unwrap_or(u32::MAX);
        if latest.get(&major).is_none_or(|(v, _)| *v < version) {
            latest.insert(major, (version, stored));
        }
    }
    latest
        .into_iter()
        .filter_map(|(major, (_, stored))| {
            let contract = stored_contract(stored).ok()?;
            Some((major, contract.schema?.into_iter().next()?))
        })
        .collect()
}

/// The ports of a product for the bundle, each with its contract's columns
/// and the schema object served (trimmed to what serving needs), from the
/// product's contract versions. A port without a location (none is stored
/// so) is left out.
pub(super) fn bundle_ports(product: &Product, contracts: &[ContractVersion]) -> Vec<BundlePort> {
    let schemas = schemas_by_major(contracts);
    product
        .output_ports
        .iter()
        .filter_map(|port| {
            let object = schemas.get(&port.major_version);
            Some(BundlePort {
                major_version: port.major_version,
                location: port.location.clone()?,
                columns: object
                    .and_then(|o| o.properties.as_ref())
                    .map(|props| {
                        props
                            .iter()
                            .filter_map(|p| {
                                Some(PolicyColumn {
                                    name: odcs::arrow::column_name(p)?.to_string(),
                                    classification: p.classification.clone(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                schema: object.map(odcs::served::served_object),
            })
        })
        .collect()
}

/// Stored policies, typed, by kind.
pub(super) fn bundle_policies(
    stored: Vec<StoredPolicy>,
) -> Result<(Vec<GrantSpec>, Vec<MaskSpec>, Vec<RowFilterSpec>)> {
    let (mut grants, mut masks, mut filters) = (Vec::new(), Vec::new(), Vec::new());
    for stored in stored {
        match stored.kind {
            PolicyKind::Grant => grants.push(typed::<GrantSpec>(stored)?.spec),
            PolicyKind::Mask => masks.push(typed::<MaskSpec>(stored)?.spec),
            PolicyKind::RowFilter => filters.push(typed::<RowFilterSpec>(stored)?.spec),
        }
    }
    Ok((grants, masks, filters))
}
