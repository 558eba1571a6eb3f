//! Access requests to products' owners, their decisions, and products' usage.

use chrono::Utc;
use tessera_contracts::api::{
    AccessApproval, AccessDenial, AccessRequest, AccessRequestCreate, AccessRequestStatus, Page, UsageRecord,
};
use tessera_contracts::names::validate_name;
use tessera_contracts::policy::{GrantSpec, Subject, Target};

use super::validate::{field, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;
use crate::store::{AccessDecision, AccessRequestQuery};

fn check_note(note: Option<&str>) -> Result<()> {
    if note.is_some_and(|n| n.chars().count() > 4000) {
        return Err(Error::Invalid(vec![field("note", "at most 4000 characters")]));
    }
    Ok(())
}

impl Catalog {
    pub async fn request_access(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        body: AccessRequestCreate,
    ) -> Result<AccessRequest> {
        self.visible_product(caller, domain, product).await?;
        let mut errors = Vec::new();
        if let Err(e) = validate_name(&body.purpose) {
            errors.push(field("purpose", e.to_string()));
        }
        let len = body.justification.trim().chars().count();
        if len == 0 || len > 4000 {
            errors.push(field("justification", "must have 1 to 4000 characters"));
        }
        finish(errors)?;
        Ok(self
            .store
            .create_access_request(caller.name(), domain, product, &body)
            .await?)
    }

    pub async fn list_access_requests(
        &self,
        caller: &Caller,
        status: Option<AccessRequestStatus>,
        product: Option<(String, String)>,
        paging: &Paging,
    ) -> Result<Page<AccessRequest>> {
        let request = paging.request()?;
        let query = AccessRequestQuery {
            visible_to: (!caller.is_admin()).then(|| caller.name().to_string()),
            status,
            product,
            page: request.clone(),
        };
        let rows = self.store.list_access_requests(&query).await?;
        Ok(page(rows, &request, |r| r.id.to_string()))
    }

    /// A request, for its requester, the product's owners and admins (404 to others).
    pub async fn get_access_request(&self, caller: &Caller, id: i64) -> Result<(AccessRequest, bool)> {
        let not_found = || Error::NotFound(format!("access request {id} not found"));
        let request = self.store.get_access_request(id).await?.ok_or_else(not_found)?;
        let owner = match self.store.get_domain(&request.domain).await? {
            Some(d) => match self.store.get_product(&request.domain, &request.product).await? {
                Some(p) => self.authz.owns_product(caller, &d, &p),
                None => false,
            },
            None => false,
        };
        if !owner && request.requester != caller.name() {
            return Err(not_found());
        }
        Ok((request, owner))
    }

    async fn decide(&self, caller: &Caller, id: i64, decision: AccessDecision) -> Result<AccessRequest> {
        let (_, owner) = self.get_access_request(caller, id).await?;
        if !owner {
            return Err(Error::Forbidden(
                "only the product's owners decide on access to it".into(),
            ));
        }
        Ok(self.store.decide_access_request(caller.name(), id, &decision).await?)
    }

    pub async fn approve_access(&self, caller: &Caller, id: i64, body: AccessApproval) -> Result<AccessRequest> {
        check_note(body.note.as_deref())?;
        if body.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(Error::Invalid(vec![field("expires_at", "must be in the future")]));
        }
        let (request, _) = self.get_access_request(caller, id).await?;
        let grant = GrantSpec {
            name: format!("access_request_{id}"),
            subject: Subject::Principal {
                name: request.requester.clone(),
            },
            target: Target::Product {
                domain: request.domain.clone(),
                product: request.product.clone(),
            },
            purposes: vec![request.purpose.clone()],
            expires_at: body.expires_at,
        };
        let decision = AccessDecision {
            grant: Some(Self::new_policy(&grant)?),
            note: body.note,
            expires_at: body.expires_at,
        };
        self.decide(caller, id, decision).await
    }

    pub async fn deny_access(&self, caller: &Caller, id: i64, body: AccessDenial) -> Result<AccessRequest> {
        check_note(body.note.as_deref())?;
        let decision = AccessDecision {
            grant: None,
            note: body.note,
            expires_at: None,
        };
        self.decide(caller, id, decision).await
    }

    /// A product's usage, for its owners and admins.
    pub async fn usage(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<UsageRecord>> {
        self.owned_product(caller, domain, product).await?;
        let request = paging.request()?;
        let rows = self.store.list_usage(domain, product, &request).await?;
        Ok(page(rows, &request, |r| r.id.to_string()))
    }
}
