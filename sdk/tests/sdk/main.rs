//! The SDK's tests, one binary: its coverage of the REST API against the
//! committed OpenAPI document (and a real catalog), and the publisher against
//! real Delta tables.

mod openapi;
mod publish;
