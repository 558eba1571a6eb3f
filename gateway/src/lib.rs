//! Tessera's gateway: the data plane. Every query passes through it.
//!
//! [`engine`] turns the catalog's bundle into per-principal DataFusion sessions
//! over shared Delta table providers ([`tables`], hot ones copied into memory by
//! [`accel`]) and runs untrusted SQL under
//! limits; [`http`], [`pg`] and [`flight`] are its three endpoints; [`sync`]
//! keeps the bundle current.

pub mod accel;
pub mod compact;
pub mod config;
pub mod engine;
pub mod error;
pub mod flight;
pub mod http;
pub mod pg;
pub mod pgrows;
pub mod policy;
pub mod quality;
pub mod sync;
pub mod tables;

pub use accel::{AcceleratedTable, Acceleration, CopyState};
pub use config::{GatewayConfig, Limits};
pub use engine::{AuditSink, Engine, Hooks, Principal, Protocol, QueryRecord, QueryStream, Session, Touched};
pub use error::QueryError;
