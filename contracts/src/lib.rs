//! Tessera's domain model, shared by the catalog, the gateway and the SDK.
//!
//! Pure: no I/O and no async. The catalog and the gateway never import each other;
//! they agree through the types defined here: the REST API's bodies in [`api`] and
//! the policy bundle gateways serve from in [`bundle`].

pub mod api;
pub mod bundle;
pub mod document;
pub mod keys;
pub mod lifecycle;
pub mod names;
pub mod odcs;
pub mod policy;

pub use lifecycle::ProductStatus;
pub use names::{NameError, validate_name};
