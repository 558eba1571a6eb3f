//! The secrets and trust anchors a bundle carries: the mesh's key for `hash`
//! masks, and the OpenID Connect issuers whose tokens gateways verify offline.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The mesh's secret key for `hash` masks: 32 random bytes, lower-case hex.
/// It never appears in logs (its `Debug` is redacted) nor in any API answer
/// but the bundle gateways read.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct MaskKey(String);

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "MaskKey(unset)"
        } else {
            "MaskKey(***)"
        })
    }
}

impl MaskKey {
    /// Key length in bytes.
    pub const LEN: usize = 32;

    /// A key from its hex form; `None` unless it is 32 bytes of lower-case hex.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let valid = hex.len() == 2 * Self::LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Self(hex.to_string()))
    }

    /// A key from 32 random bytes (the caller brings the randomness: this crate does no I/O).
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(hex::encode(bytes))
    }

    /// The key's bytes; empty when the bundle carries none.
    pub fn bytes(&self) -> Vec<u8> {
        hex::decode(&self.0).unwrap_or_default()
    }

    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// The hex form, for storing it.
    pub fn expose_hex(&self) -> &str {
        &self.0
    }
}

/// An OpenID Connect issuer whose access tokens (JWT) stand for principals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleIssuer {
    /// The issuer identifier (`iss`), e.g. `https://idp.example.com`.
    pub issuer: String,
    /// The audiences a token must name one of (`aud`).
    pub audiences: Vec<String>,
    /// The signature algorithms accepted (e.g. `RS256`, `ES256`); never `none`.
    pub algorithms: Vec<String>,
    /// The clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default)]
    pub clock_skew_secs: u64,
    /// How a token's claims become a principal and its attributes.
    pub claims: ClaimMapping,
    /// Where the issuer publishes its key set (from its discovery document):
    /// gateways refresh their own copy from there when they can reach it.
    #[serde(default)]
    pub jwks_uri: String,
    /// The issuer's JSON Web Key Set, as the catalog last fetched it.
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    /// When the catalog first saw this key set: a gateway verifies with the
    /// fresher of this copy and its own.
    #[serde(default)]
    pub jwks_seen_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which claims name the principal and carry its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// The claim whose value is the principal's name (`sub` by default).
    pub principal: String,
    /// The claim listing the principal's groups, if any.
    #[serde(default)]
    pub groups: Option<String>,
    /// The claim listing the principal's regions, if any.
    #[serde(default)]
    pub regions: Option<String>,
    /// The claim listing the purposes the principal may declare, if any.
    #[serde(default)]
    pub purposes: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            principal: "sub".into(),
            groups: None,
            regions: None,
            purposes: None,
        }
    }
}
