//! The one authorization interface of the catalog: who may see and change what.
//!
//! Every handler asks here, never decides itself, so that the governance work
//! (grants, access requests) changes this module and not the handlers.

use tessera_contracts::api::{Domain, Principal, Product, Role, Visibility};
use tessera_contracts::policy::Target;

use crate::service::Error;
use crate::store::ProductScope;

/// The authenticated principal of a request, with its team memberships.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub teams: Vec<String>,
    /// What the caller's live grants cover (for any purpose): restricted
    /// products they cover are visible to it.
    pub granted: Vec<Target>,
}

impl Caller {
    pub fn name(&self) -> &str {
        &self.principal.name
    }

    pub fn is_admin(&self) -> bool {
        self.principal.admin
    }

    /// Whether the caller is a standalone gateway's principal.
    pub fn is_gateway(&self) -> bool {
        self.principal.roles.contains(&Role::Gateway)
    }

    /// Whether the caller is a monitoring system's principal.
    pub fn is_metrics(&self) -> bool {
        self.principal.roles.contains(&Role::Metrics)
    }

    fn in_team(&self, team: &str) -> bool {
        self.teams.iter().any(|t| t == team)
    }
}

/// Decisions about what a caller may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Authz;

impl Authz {
    /// Platform administration: domains, teams, principals, keys, the change log.
    pub fn require_admin(self, caller: &Caller) -> Result<(), Error> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden("this needs a platform admin".into()))
        }
    }

    /// A gateway's calls (bundles, its reports, audit batches): a principal
    /// with the `gateway` role, and no other (an admin's key is refused: a
    /// key on a gateway host must open nothing else).
    pub fn require_gateway(self, caller: &Caller) -> Result<(), Error> {
        if caller.is_gateway() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "this needs a gateway's principal: a service principal with the gateway role".into(),
            ))
        }
    }

    /// Reading `/metrics`: a principal with the `metrics` role, or an admin.
    pub fn require_metrics(self, caller: &Caller) -> Result<(), Error> {
        if caller.is_metrics() || caller.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "/metrics needs a principal with the metrics role (or an admin)".into(),
            ))
        }
    }

    /// Domains are the mesh's map: every signed-in principal sees every domain,
    /// whatever it may see of the domain's products.
    pub fn can_see_domain(self, _caller: &Caller, _domain: &Domain) -> bool {
        true
    }

    /// Teams are visible to every signed-in principal, so that people can find
    /// the owners of what they use.
    pub fn can_see_team(self, _caller: &Caller) -> bool {
        true
    }

    /// Members of a domain's owning team own the domain.
    pub fn owns_domain(self, caller: &Caller, domain: &Domain) -> bool {
        caller.is_admin() || caller.in_team(&domain.owner_team)
    }

    pub fn require_domain_owner(self, caller: &Caller, domain: &Domain) -> Result<(), Error> {
        if self.owns_domain(caller, domain) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "only members of team {:?}, which owns domain {:?}, may do this",
                domain.owner_team, domain.name
            )))
        }
    }

    /// A product is owned by its owning team and by its domain's owners.
    pub fn owns_product(self, caller: &Caller, domain: &Domain, product: &Product) -> bool {
        self.owns_domain(caller, domain) || caller.in_team(&product.owner_team)
    }

    /// Whether a product's metadata exists for the caller at all.
    pub fn can_see_product(self, caller: &Caller, domain: &Domain, product: &Product) -> bool {
        product.visibility == Visibility::Discoverable
            || self.owns_product(caller, domain, product)
            || caller
                .granted
                .iter()
                .any(|t| t.covers(&product.domain, &product.name, &product.tags))
    }

    /// The products a listing may return for the caller, as a store filter.
    pub fn product_scope(self, caller: &Caller) -> ProductScope {
        if caller.is_admin() || caller.granted.contains(&Target::All) {
            ProductScope::All
        } else {
            ProductScope::VisibleTo {
                principal: caller.name().to_string(),
                granted: caller.granted.clone(),
            }
        }
    }

    /// Principals are visible to admins, and each principal sees itself.
    pub fn require_self_or_admin(self, caller: &Caller, principal: &str) -> Result<(), Error> {
        if caller.is_admin() || caller.name() == principal {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only platform admins may act on other principals".into(),
            ))
        }
    }
}
