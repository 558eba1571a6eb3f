//! Tessera's gateway: the data plane of the mesh. Everything that touches rows
//! runs here: today the contracts' quality checks; the governed SQL endpoints
//! (HTTP, PostgreSQL wire, Arrow Flight SQL) come with the gateway issue.

pub mod quality;
