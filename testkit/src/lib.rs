//! What the demo, the tests and the benchmarks share, and the catalog never links.
//!
//! - [`tpch`]: the demo mesh's data, TPC-H generated deterministically and
//!   written as one Delta table per product.
//! - [`certs`]: a certificate authority and a server certificate, for TLS.
//! - [`jwt`]: tokens signed as an OpenID Connect issuer signs them, for the
//!   token tests.

pub mod certs;
pub mod jwt;
pub mod tpch;
