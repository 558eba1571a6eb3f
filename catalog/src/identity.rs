//! OpenID Connect issuers (`[[identity.issuers]]`): their configuration, and
//! their signing keys as the catalog fetches them.
//!
//! The catalog is the one place issuers are configured. It fetches each
//! issuer's key set (discovery, then `jwks_uri`) at start, every
//! [`REFRESH_EVERY`], and when a token names a key it does not know (at most
//! once per [`UNKNOWN_KID_PAUSE`] per issuer), and stores the issuers with
//! their keys whenever they change: the change moves the catalog's version,
//! so every gateway receives the new keys with its next bundle, and a
//! restarted catalog has them before the issuer answers.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tessera_contracts::bundle::{BundleIssuer, ClaimMapping};
use tessera_contracts::tokens::{self, KeySet, TokenError, TokenIdentity, Unverified};

/// How often each issuer's key set is fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// After a failed fetch, the next try comes sooner.
pub const RETRY_EVERY: Duration = Duration::from_secs(15);
/// The least time between two fetches caused by unknown key ids.
pub const UNKNOWN_KID_PAUSE: Duration = Duration::from_secs(5);

/// The `[identity]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The issuers whose access tokens stand for principals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerConfig>,
}

impl IdentityConfig {
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Every mistake of the section, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let at = format!("identity.issuers[{i}]");
            match url::Url::parse(&issuer.issuer) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => {}
                _ => problems.push(format!("{at}.issuer: {:?} is not an http(s) URL", issuer.issuer)),
            }
            if self.issuers[..i].iter().any(|other| other.issuer == issuer.issuer) {
                problems.push(format!("{at}.issuer: {:?} is configured twice", issuer.issuer));
            }
            if issuer.audiences.is_empty() {
                problems.push(format!("{at}.audiences: name at least one audience"));
            }
            if issuer.algorithms.is_empty() {
                problems.push(format!("{at}.algorithms: allow at least one algorithm"));
            }
            for alg in &issuer.algorithms {
                if !tokens::ALGORITHMS.contains(&alg.as_str()) {
                    problems.push(format!(
                        "{at}.algorithms: {alg:?} is not accepted (one of {})",
                        tokens::ALGORITHMS.join(", ")
                    ));
                }
            }
            if issuer.claims.principal.is_empty() {
                problems.push(format!(
                    "{at}.claims.principal: name the claim that names the principal"
                ));
            }
        }
        problems
    }
}

/// One issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// Tokens must name one of these in `aud`.
    pub audiences: Vec<String>,
    /// Signature algorithms accepted (asymmetric only).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Which claims name the principal and carry its attributes.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Whether a token's principal must exist in the catalog beforehand.
    #[serde(default)]
    pub provision: Provision,
    /// The key set's URL; found by discovery when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The portal's sign-in with this issuer (authorization code + PKCE);
    /// absent, the portal offers API keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<PortalClient>,
}

/// `[identity.issuers.portal]`: the portal as a public client of the issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalClient {
    /// The client id registered at the issuer, with the redirect URI
    /// `<portal URL>/signin/callback`.
    pub client_id: String,
    /// The scopes to ask for.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// A resource indicator (RFC 8707) to send, for issuers that pick the
    /// token's audience by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

fn default_scope() -> String {
    "openid".into()
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn default_skew() -> u64 {
    60
}

/// What the catalog does with a token whose principal it does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provision {
    /// Refuse it: an admin creates principals (the default).
    #[default]
    Existing,
    /// Create the principal on first sight, with the token's attributes.
    Create,
}

/// An issuer as the catalog holds it now.
struct Held {
    issuer: BundleIssuer,
    provision: Provision,
    configured_jwks_uri: Option<String>,
    portal: Option<PortalClient>,
    /// The browser's endpoints, once discovered.
    endpoints: Option<(String, String)>,
    keys: KeySet,
    /// The last fetch, whether it worked.
    fetched: Option<Instant>,
}

/// The issuers, their keys, and fetching them.
pub struct Identity {
    held: std::sync::RwLock<Vec<Held>>,
    client: reqwest::Client,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("issuers", &self.issuers().len())
            .finish()
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::new(&IdentityConfig::default(), &[], reqwest::Client::new())
    }
}

impl Identity {
    /// The configured issuers, with the keys `stored` holds for them.
    pub fn new(config: &IdentityConfig, stored: &[BundleIssuer], client: reqwest::Client) -> Self {
        let held = config
            .issuers
            .iter()
            .map(|c| {
                let known = stored.iter().find(|s| s.issuer == c.issuer);
                let jwks = known.map_or_else(|| serde_json::json!({ "keys": [] }), |s| s.jwks.clone());
                Held {
                    keys: KeySet::from_json(&jwks),
                    issuer: BundleIssuer {
                        issuer: c.issuer.clone(),
                        audiences: c.audiences.clone(),
                        algorithms: c.algorithms.clone(),
                        clock_skew_secs: c.clock_skew_secs,
                        claims: c.claims.clone(),
                        jwks_uri: known.map(|s| s.jwks_uri.clone()).unwrap_or_default(),
                        jwks,
                        jwks_seen_at: known.and_then(|s| s.jwks_seen_at),
                    },
                    provision: c.provision,
                    configured_jwks_uri: c.jwks_uri.clone(),
                    portal: c.portal.clone(),
                    endpoints: None,
                    fetched: None,
                }
            })
            .collect();
        Self {
            held: std::sync::RwLock::new(held),
            client,
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Vec<Held>> {
        self.held.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.held().is_empty()
    }

    /// The issuers as bundles carry them (and the store keeps them).
    pub fn issuers(&self) -> Vec<BundleIssuer> {
        self.held().iter().map(|h| h.issuer.clone()).collect()
    }

    /// Verifies a token with the keys held now; `provision` says what to do
    /// with a principal not known yet.
    pub fn verify(&self, token: &str) -> Result<(TokenIdentity, Provision), TokenError> {
        let seen = Unverified::parse(token)?;
        let held = self.held();
        let h = held
            .iter()
            .find(|h| h.issuer.issuer == seen.issuer)
            .ok_or_else(|| TokenError::UnknownIssuer(seen.issuer.clone()))?;
        let issuer = tokens::issuer_of(std::slice::from_ref(&h.issuer), &seen)?;
        Ok((issuer.verify(token, &seen, &h.keys)?, h.provision))
    }

    /// Whether `issuer` may be fetched again now for an unknown key id.
    pub fn may_refetch(&self, issuer: &str) -> bool {
        self.held()
            .iter()
            .find(|h| h.issuer.issuer == issuer)
            .is_some_and(|h| h.fetched.is_none_or(|at| at.elapsed() >= UNKNOWN_KID_PAUSE))
    }

    /// Fetches the key sets of every issuer (or of `only`). Returns whether
    /// any issuer's keys changed, and the failures, one line each.
    pub async fn fetch(&self, only: Option<&str>) -> (bool, Vec<String>) {
        let _one = self.fetching.lock().await;
        let wanted: Vec<(String, Option<String>, bool)> = self
            .held()
            .iter()
            .filter(|h| only.is_none_or(|o| o == h.issuer.issuer))
            .map(|h| {
                (
                    h.issuer.issuer.clone(),
                    h.configured_jwks_uri.clone(),
                    h.portal.is_some(),
                )
            })
            .collect();
        let mut changed = false;
        let mut failures = Vec::new();
        for (issuer, configured, portal) in wanted {
            let fetched = async {
                // Discovery names the keys, and the portal's endpoints.
                let discovered = if configured.is_none() || portal {
                    Some(tessera_http::oidc::discover(&self.client, &issuer).await?)
                } else {
                    None
                };
                let uri = configured
                    .clone()
                    .or_else(|| discovered.as_ref().map(|d| d.jwks_uri.clone()))
                    .unwrap_or_default();
                let jwks = tessera_http::oidc::key_set(&self.client, &uri).await?;
                let endpoints = discovered.and_then(|d| d.authorization_endpoint.zip(d.token_endpoint));
                Ok::<_, String>((uri, jwks, endpoints))
            }
            .await;
            let mut held = self.held.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(h) = held.iter_mut().find(|h| h.issuer.issuer == issuer) else {
                continue;
            };
            h.fetched = Some(Instant::now());
            match fetched {
                Ok((uri, jwks, endpoints)) => {
                    h.endpoints = endpoints.or(h.endpoints.take());
                    if h.issuer.jwks != jwks || h.issuer.jwks_uri != uri {
                        h.keys = KeySet::from_json(&jwks);
                        h.issuer.jwks = jwks;
                        h.issuer.jwks_uri = uri;
                        h.issuer.jwks_seen_at = Some(chrono::Utc::now());
                        changed = true;
                    }
                }
                Err(e) => failures.push(format!("the keys of the issuer {issuer}: {e}")),
            }
        }
        (changed, failures)
    }

    /// The issuers the portal offers sign-in with (configured for it, and
    /// discovered).
    pub fn sign_in(&self) -> Vec<tessera_contracts::api::SignInIssuer> {
        self.held()
            .iter()
            .filter_map(|h| {
                let portal = h.portal.as_ref()?;
                let (authorization_endpoint, token_endpoint) = h.endpoints.clone()?;
                Some(tessera_contracts::api::SignInIssuer {
                    issuer: h.issuer.issuer.clone(),
                    authorization_endpoint,
                    token_endpoint,
                    client_id: portal.client_id.clone(),
                    scope: portal.scope.clone(),
                    resource: portal.resource.clone(),
                })
            })
            .collect()
    }
}
