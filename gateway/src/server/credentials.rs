//! Credentials, however a protocol carries them: an `Authorization` header
//! (HTTP), `authorization` metadata (Flight SQL, bearer or Basic), or a
//! PostgreSQL password. Each is parsed once, by
//! [`Credential`](tessera_contracts::credentials::Credential), and checked by
//! [`Engine::authenticate`].

use std::net::IpAddr;

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

/// Authenticates a credential arriving from `peer`, throttled: an address
/// that failed too often is refused before the credential is read, a key
/// that failed lately is checked a little later, and a failure counts
/// against both (see [`tessera_http::throttle`]). A token naming a key the
/// gateway lacks makes it fetch its issuer's keys first.
pub async fn admit(
    engine: &Engine,
    peer: Option<IpAddr>,
    credential: Option<&Credential>,
) -> Result<Principal, QueryError> {
    let throttle = engine.throttle();
    if let Some(peer) = peer {
        throttle.admit(peer).map_err(QueryError::Throttled)?;
    }
    let secret = credential.ok_or(QueryError::Unauthenticated)?.secret();
    let key_id = tessera_contracts::keys::parse(secret).map(|k| k.id.to_string());
    if let Some(id) = &key_id {
        let delay = throttle.key_delay(id);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    engine.prepare_credential(secret).await;
    let principal = engine.authenticate(secret);
    if let Err(QueryError::Unauthenticated | QueryError::TokenRefused(_)) = &principal {
        throttle.failed(peer, key_id.as_deref());
    }
    principal
}
