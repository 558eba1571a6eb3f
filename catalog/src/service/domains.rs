//! Business domains and their owning teams.

use tessera_contracts::api::{Domain, DomainCreate, DomainUpdate, Page};

use super::validate::{check_len, check_name, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;

impl Catalog {
    pub async fn create_domain(&self, caller: &Caller, body: DomainCreate) -> Result<Domain> {
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
        finish(errors)?;
        Ok(self.store.create_domain(caller.name(), &body).await?)
    }

    pub async fn get_domain(&self, caller: &Caller, name: &str) -> Result<Domain> {
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
        Ok(result)
    }

    pub async fn update_domain(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: DomainUpdate,
    ) -> Result<Domain> {
        let domain = self.get_domain(caller, name).await?;
        self.authz.require_domain_owner(caller, &domain)?;
        if body.owner_team.is_some() {
            // Handing a domain to another team is platform administration.
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
        finish(errors)?;
        Ok(self.store.update_domain(caller.name(), name, if_match, &body).await?)
    }

    pub async fn delete_domain(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<()> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_domain(caller.name(), name, if_match).await?)
    }
}
