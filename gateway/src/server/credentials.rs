//! Credentials, however a protocol carries them: an `Authorization` header
//! (HTTP), `authorization` metadata (Flight SQL, bearer or Basic), or a
//! PostgreSQL password. Each is parsed once, by
//! [`Credential`](tessera_contracts::credentials::Credential), and checked by
//! [`Engine::authenticate`].

use axum::http::{HeaderMap, header};
use tessera_contracts::credentials::Credential;
use tonic::metadata::MetadataMap;

use crate::engine::{Engine, Principal};
use crate::error::QueryError;

/// The credential of an HTTP request, if it sends one.
pub fn from_headers(headers: &HeaderMap) -> Option<Credential> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    Credential::from_authorization(value)
}

/// The credential of a gRPC call, if it sends one.
pub fn from_metadata(metadata: &MetadataMap) -> Option<Credential> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    Credential::from_authorization(value)
}

/// The principal a credential stands for; no credential is unauthenticated.
pub fn authenticate(engine: &Engine, credential: Option<&Credential>) -> Result<Principal, QueryError> {
    engine.authenticate(credential.ok_or(QueryError::Unauthenticated)?.secret())
}
