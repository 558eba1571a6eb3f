//! The gateway over real sockets: the TPC-H suite through HTTP, PostgreSQL wire
//! and Flight SQL against raw DataFusion over the same Delta tables, the
//! lock-down of untrusted SQL, limits, and products appearing and disappearing
//! with the bundle, and hot tables answered from memory.

mod accel;
mod differential;
mod fixture;
mod governance;
mod hostile;
mod seams;
mod sqlgen;
mod tpch;
