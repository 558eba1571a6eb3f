//! Fetching an OpenID Connect issuer's signing keys: its discovery document
//! (`/.well-known/openid-configuration`) names `jwks_uri`, which serves the
//! JSON Web Key Set. The catalog and standalone gateways fetch the same way.

use std::time::Duration;

use serde_json::Value;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest discovery document or key set read.
const MAX_BYTES: usize = 1024 * 1024;

/// What an issuer's discovery document says, of what Tessera uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub jwks_uri: String,
    /// Where a browser signs in (the portal's authorization-code flow).
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// `issuer`'s discovery document, whose `issuer` must be `issuer` itself,
/// as OpenID Connect Discovery requires.
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Discovery, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let discovery = get_json(client, &url).await?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("{url} names another issuer"));
    }
    let text = |field: &str| discovery.get(field).and_then(Value::as_str).map(str::to_string);
    Ok(Discovery {
        jwks_uri: text("jwks_uri").ok_or_else(|| format!("{url} names no jwks_uri"))?,
        authorization_endpoint: text("authorization_endpoint"),
        token_endpoint: text("token_endpoint"),
    })
}

/// Where `issuer` publishes its keys: `jwks_uri` when configured, else the
/// one its discovery document names.
pub async fn jwks_uri(client: &reqwest::Client, issuer: &str, configured: Option<&str>) -> Result<String, String> {
    match configured {
        Some(uri) => Ok(uri.to_string()),
        None => Ok(discover(client, issuer).await?.jwks_uri),
    }
}

/// The key set at `jwks_uri`: a JSON object with a `keys` array.
pub async fn key_set(client: &reqwest::Client, jwks_uri: &str) -> Result<Value, String> {
    let jwks = get_json(client, jwks_uri).await?;
    if !jwks.get("keys").is_some_and(Value::is_array) {
        return Err(format!("{jwks_uri} is not a JSON Web Key Set"));
    }
    Ok(jwks)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if body.len() > MAX_BYTES {
        return Err(format!("{url} answered more than {MAX_BYTES} bytes"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
}
