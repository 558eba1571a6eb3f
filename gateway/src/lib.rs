//! Tessera's gateway: the data plane of the mesh (governed SQL over Delta tables
//! through HTTP, PostgreSQL wire and Arrow Flight SQL).
//!
//! Not built yet: the crate exists so that the workspace has its final shape and
//! its dependency set (DataFusion 55, arrow-flight 59, datafusion-postgres) is
//! resolved and locked together with deltalake from the start.
