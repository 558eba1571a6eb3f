//! OpenID Connect access tokens (JWT, RFC 9068), verified offline against an
//! issuer's configuration and key set, and mapped to a principal.
//!
//! The catalog and every gateway verify the same way, with the issuers a
//! bundle carries ([`BundleIssuer`]); what differs is only where their key sets
//! come from (fetched from the issuer, or the bundle's copy). Verification
//! never trusts the token's own header for more than choosing among the keys
//! and algorithms the issuer's configuration allows: `alg: none`, an algorithm
//! not configured, an unknown `kid`, another issuer or audience, an expired or
//! not-yet-valid token are all refused.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::api::Attributes;
use crate::bundle::BundleIssuer;
use crate::names::validate_name;

/// Whether a presented secret is a JWT (three base64url parts, a JSON header)
/// rather than an API key (`tsk_...`).
pub fn looks_like_jwt(secret: &str) -> bool {
    secret.starts_with("eyJ")
        && secret.split('.').count() == 3
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why a token was refused. The messages name what is wrong without echoing
/// the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("tokens signed with {0:?} are not accepted")]
    Algorithm(String),
    #[error("tokens of the issuer {0:?} are not accepted")]
    UnknownIssuer(String),
    #[error("the issuer {issuer:?} has no signing key {kid:?}")]
    UnknownKey { issuer: String, kid: String },
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not for this audience")]
    Audience,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token's claim {claim:?} does not name a principal: {why}")]
    Principal { claim: String, why: String },
}

/// What a token's header and issuer say before anything is verified: enough
/// to choose the issuer's configuration and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub issuer: String,
    pub algorithm: String,
    pub kid: Option<String>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_part(header)?;
        let payload = decode_part(payload)?;
        let algorithm = header.get("alg").and_then(Value::as_str).ok_or(TokenError::Malformed)?;
        let issuer = payload
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::Malformed)?;
        Ok(Self {
            issuer: issuer.to_string(),
            algorithm: algorithm.to_string(),
            kid: header.get("kid").and_then(Value::as_str).map(str::to_string),
        })
    }
}

fn decode_part(part: &str) -> Result<Map<String, Value>, TokenError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// An issuer's signing keys, parsed once from its JSON Web Key Set. Keys of a
/// kind this build cannot use are skipped, not fatal to the rest.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    pub fn from_json(jwks: &Value) -> Self {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
                    .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        Self { keys }
    }

    /// The key a token names; a token without `kid` uses the only key of a set of one.
    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// Whether the set has the key a token names.
    pub fn has(&self, kid: Option<&str>) -> bool {
        self.find(kid).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A verified token: who it stands for, and what its claims say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub issuer: String,
    /// The principal's name, from the mapping's principal claim.
    pub name: String,
    /// A client-credentials token (its subject is the client itself).
    pub service: bool,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The attributes the mapping takes from claims; `None` where it names no
    /// claim (the stored principal's value stands).
    pub groups: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub purposes: Option<Vec<String>>,
    pub expires_at: DateTime<Utc>,
}

impl TokenIdentity {
    /// The session's attributes: each mapped one from the token (an absent
    /// claim is an empty list: the issuer is the authority for it), the others
    /// from the stored principal, if any.
    pub fn attributes_over(&self, stored: Option<&Attributes>) -> Attributes {
        let keep = |mapped: &Option<Vec<String>>, stored: Option<&Vec<String>>| {
            mapped.clone().unwrap_or_else(|| stored.cloned().unwrap_or_default())
        };
        Attributes {
            groups: keep(&self.groups, stored.map(|a| &a.groups)),
            regions: keep(&self.regions, stored.map(|a| &a.regions)),
            purposes: keep(&self.purposes, stored.map(|a| &a.purposes)),
        }
    }
}

/// The algorithms a configuration may allow: asymmetric only (a shared
/// secret would let every gateway mint tokens).
pub const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn algorithm(name: &str) -> Option<Algorithm> {
    if !ALGORITHMS.contains(&name) {
        return None;
    }
    name.parse().ok()
}

impl BundleIssuer {
    /// Verifies `token` (whose unverified parts are `seen`) against this
    /// issuer's configuration and `keys`, and maps its claims.
    pub fn verify(&self, token: &str, seen: &Unverified, keys: &KeySet) -> Result<TokenIdentity, TokenError> {
        if seen.issuer != self.issuer {
            return Err(TokenError::UnknownIssuer(seen.issuer.clone()));
        }
        let alg = self
            .algorithms
            .iter()
            .any(|a| a == &seen.algorithm)
            .then(|| algorithm(&seen.algorithm))
            .flatten()
            .ok_or_else(|| TokenError::Algorithm(seen.algorithm.clone()))?;
        let jwk = keys.find(seen.kid.as_deref()).ok_or_else(|| TokenError::UnknownKey {
            issuer: self.issuer.clone(),
            kid: seen.kid.clone().unwrap_or_default(),
        })?;
        // A key published for one algorithm is not used with another.
        if let Some(key_alg) = jwk.common.key_algorithm
            && key_alg.to_string() != seen.algorithm
        {
            return Err(TokenError::Algorithm(seen.algorithm.clone()));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Invalid(format!("signing key: {e}")))?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.clock_skew_secs;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        // `iat` in the future beyond the skew: minted by a clock that is wrong.
        let now = Utc::now().timestamp();
        if let Some(iat) = claims.get("iat").and_then(Value::as_i64)
            && iat > now + self.clock_skew_secs as i64
        {
            return Err(TokenError::NotYetValid);
        }
        self.identity(&claims)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<TokenIdentity, TokenError> {
        let claim = &self.claims.principal;
        let name = claims
            .get(claim)
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::Principal {
                claim: claim.clone(),
                why: "the token has no such string claim".into(),
            })?;
        validate_name(name).map_err(|e| TokenError::Principal {
            claim: claim.clone(),
            why: format!("{name:?} is not a principal name: {e}"),
        })?;
        let text = |claim: &str| claims.get(claim).and_then(Value::as_str).map(str::to_string);
        let list = |mapped: &Option<String>| mapped.as_ref().map(|claim| strings(claims.get(claim)));
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
        let subject = text("sub");
        Ok(TokenIdentity {
            issuer: self.issuer.clone(),
            name: name.to_string(),
            service: subject.is_some() && subject == text("client_id"),
            display_name: text("name"),
            email: text("email"),
            groups: list(&self.claims.groups),
            regions: list(&self.claims.regions),
            purposes: list(&self.claims.purposes),
            expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_default(),
        })
    }
}

/// A claim as a list of strings: an array's strings, or one string.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::Invalid(format!("no {claim:?} claim")),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm("?".into()),
        other => TokenError::Invalid(format!("{other:?}")),
    }
}

/// The issuer among `issuers` whose token `seen` is, once its algorithm is
/// one Tessera accepts at all.
pub fn issuer_of<'a>(issuers: &'a [BundleIssuer], seen: &Unverified) -> Result<&'a BundleIssuer, TokenError> {
    if algorithm(&seen.algorithm).is_none() {
        return Err(TokenError::Algorithm(seen.algorithm.clone()));
    }
    issuers
        .iter()
        .find(|i| i.issuer == seen.issuer)
        .ok_or_else(|| TokenError::UnknownIssuer(seen.issuer.clone()))
}

#[cfg(test)]
mod tests;
