//! Tessera's gateway: the data plane. Every query passes through it.
//!
//! - [`engine`]: the bundle in force, per-principal sessions, admission,
//!   planning and execution under limits, audit, result streams.
//! - [`server`]: [`Gateway::build`] binds HTTP, PostgreSQL wire and Flight SQL;
//!   one credentials module for all three.
//! - [`policy`]: governed tables and the policy barrier below the optimizer;
//!   [`mask`]: the keyed `hash` mask.
//! - [`tables`]: a session's namespace over Delta table providers shared by every session.
//! - [`served`]: the contract as the interface at serving time; drift.
//! - [`accel`]: hot tables held in memory by Delta version.
//! - [`compact`]: view columns compacted before they cross the wire.
//! - [`sync`]: the link to the catalog (bundles, ACK/NACK, last-known-good, audit shipping).
//! - [`spool`]: the durable audit spool of a standalone gateway.
//! - [`config`]: listeners, limits, storage, acceleration, audit.
//! - [`error`]: a query's failure, with its SQLSTATE, HTTP status and gRPC code.

pub mod accel;
pub mod compact;
pub mod config;
pub mod engine;
pub mod error;
pub mod mask;
pub mod policy;
pub mod served;
pub mod server;
pub mod spool;
pub mod sync;
pub mod tables;

pub use accel::{AcceleratedTable, Acceleration, CopyState};
pub use config::{GatewayConfig, Limits};
pub use engine::{AuditSink, Engine, Hooks, Principal, Protocol, QueryRecord, QueryStream, Session, Touched};
pub use error::QueryError;
pub use server::{Endpoints, Gateway, Serving, StartError};
