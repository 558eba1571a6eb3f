//! Business domains, their owning teams and their storage roots.

use tessera_contracts::api::{Domain, DomainCreate, DomainUpdate, FieldError, Page};

use super::validate::{check_len, check_name, drain, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;
use crate::storage;

/// Most storage roots one domain may have.
const MAX_ROOTS: usize = 32;

impl Catalog {
    pub async fn create_domain(&self, caller: &Caller, mut body: DomainCreate) -> Result<Domain> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        if let Err(e) = check_name("owner_team", &body.owner_team) {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        let roots = match &body.storage_roots {
            Some(given) => check_roots(&mut errors, given),
            None => match self.default_root(&body.name) {
                Ok(root) => vec![root],
                Err(message) => {
                    errors.push(FieldError {
                        path: "storage_roots".into(),
                        message,
                    });
                    Vec::new()
                }
            },
        };
        finish(errors)?;
        body.storage_roots = Some(roots);
        Ok(self.store.create_domain(caller.name(), &body).await?)
    }

    /// A domain's default storage root: `<lake root><domain>/`.
    fn default_root(&self, domain: &str) -> std::result::Result<String, String> {
        storage::normalize_root(&format!("{}{domain}/", self.lake_root))
    }

    /// The domain as `caller` sees it: its storage roots only for its owners.
    pub(super) fn present_domain(&self, caller: &Caller, mut domain: Domain) -> Domain {
        if !self.authz.owns_domain(caller, &domain) {
            domain.storage_roots.clear();
        }
        domain
    }

    pub async fn get_domain(&self, caller: &Caller, name: &str) -> Result<Domain> {
        Ok(self.present_domain(caller, self.visible_domain(caller, name).await?))
    }

    /// The domain, whole (its storage roots included), if the caller may see it.
    pub(super) async fn visible_domain(&self, caller: &Caller, name: &str) -> Result<Domain> {
        self.store
            .get_domain(name)
            .await?
            .filter(|d| self.authz.can_see_domain(caller, d))
            .ok_or_else(|| Error::NotFound(format!("domain {name:?} not found")))
    }

    pub async fn list_domains(&self, caller: &Caller, paging: &Paging) -> Result<Page<Domain>> {
        let request = paging.request()?;
        let rows = self.store.list_domains(&request).await?;
        // The cursor is taken from the unfiltered page, so filtering never skips rows.
        let mut result = page(rows, &request, |d| d.name.clone());
        result.items.retain(|d| self.authz.can_see_domain(caller, d));
        result.items = result
            .items
            .into_iter()
            .map(|d| self.present_domain(caller, d))
            .collect();
        Ok(result)
    }

    pub async fn update_domain(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        mut body: DomainUpdate,
    ) -> Result<Domain> {
        let domain = self.visible_domain(caller, name).await?;
        self.authz.require_domain_owner(caller, &domain)?;
        if body.owner_team.is_some() || body.storage_roots.is_some() {
            // Handing a domain to another team, or its storage elsewhere, is
            // platform administration.
            self.authz.require_admin(caller)?;
        }
        let mut errors = Vec::new();
        if let Some(team) = &body.owner_team
            && let Err(e) = check_name("owner_team", team)
        {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        if let Some(given) = &body.storage_roots {
            body.storage_roots = Some(check_roots(&mut errors, given));
        }
        finish(errors)?;
        Ok(self.store.update_domain(caller.name(), name, if_match, &body).await?)
    }

    pub async fn delete_domain(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<()> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_domain(caller.name(), name, if_match).await?)
    }

    /// Gives every domain without storage roots (created by a version before
    /// roots existed) its default root, as the `system` actor; returns how
    /// many it gave one. A domain whose default root overlaps another domain's
    /// roots is left without one (and logged): an admin sets its roots.
    pub async fn default_storage_roots(&self) -> Result<usize> {
        let domains = drain(
            |page| async move { self.store.list_domains(&page).await },
            |d: &Domain| d.name.clone(),
        )
        .await?;
        let mut given = 0;
        for domain in domains.into_iter().filter(|d| d.storage_roots.is_empty()) {
            let root = self
                .default_root(&domain.name)
                .map_err(|e| Error::Internal(anyhow::anyhow!(e)))?;
            let patch = DomainUpdate {
                storage_roots: Some(vec![root]),
                ..DomainUpdate::default()
            };
            match self.store.update_domain("system", &domain.name, None, &patch).await {
                Ok(_) => given += 1,
                Err(e) => tracing::warn!(domain = %domain.name, error = %e, "domain left without a storage root"),
            }
        }
        Ok(given)
    }
}

/// Storage roots as an admin gives them: each normalised (absolute, ending in
/// `/`), at least one, none equal to or nesting with another.
fn check_roots(errors: &mut Vec<FieldError>, given: &[String]) -> Vec<String> {
    let mut roots: Vec<String> = Vec::with_capacity(given.len());
    if given.is_empty() || given.len() > MAX_ROOTS {
        errors.push(FieldError {
            path: "storage_roots".into(),
            message: format!("a domain has 1 to {MAX_ROOTS} storage roots"),
        });
    }
    for (i, raw) in given.iter().enumerate() {
        let path = format!("storage_roots[{i}]");
        if raw.len() > 2048 {
            errors.push(FieldError {
                path,
                message: "a storage root has at most 2048 characters".into(),
            });
            continue;
        }
        match storage::normalize_root(raw) {
            Ok(root) if roots.iter().any(|r| storage::overlaps(r, &root)) => errors.push(FieldError {
                path,
                message: format!("{root} overlaps another root of the list"),
            }),
            Ok(root) => roots.push(root),
            Err(message) => errors.push(FieldError { path, message }),
        }
    }
    roots
}
