//! Tessera's domain model, shared by the catalog, the gateway and the SDK.
//!
//! Pure: no I/O and no async. The catalog and the gateway never import each other;
//! they agree through the types defined here: the REST API's bodies in [`api`] and
//! the policy bundle gateways serve from in [`bundle`].

//!
//! - [`api`]: the REST API's bodies, and the gateway's query wire types.
//! - [`bundle`]: the policy bundle, one versioned, content-hashed snapshot.
//! - [`credentials`]: credentials as clients present them, parsed once.
//! - [`document`]: contract documents as submitted (YAML or JSON).
//! - [`keys`]: API keys and the hash of their secret.
//! - [`lifecycle`]: a product's lifecycle states and transitions.
//! - [`names`]: names of domains, products, teams and principals; versions' majors.
//! - [`odcs`]: ODCS v3: model, validation, Arrow mapping, compatibility, quality rules.
//! - [`policy`]: grants, masks and row filters, decided for a principal and purpose.
//! - [`tokens`]: OpenID Connect access tokens, verified offline and mapped to a principal.

pub mod api;
pub mod bundle;
pub mod credentials;
pub mod document;
pub mod keys;
pub mod lifecycle;
pub mod names;
pub mod odcs;
pub mod policy;
pub mod tokens;

pub use lifecycle::ProductStatus;
pub use names::{NameError, validate_name};
