//! The catalog's use cases: authorization, validation, then the store.
//!
//! Handlers translate HTTP into calls here and back; nothing here knows HTTP.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use tessera_contracts::api::{
    ApiKey, ApiKeyCreate, ApiKeyCreated, CatalogVersion, Change, ContractVersion, ContractVersionSummary, Domain,
    DomainCreate, DomainUpdate, FieldError, Lineage, LineageEdge, LineageNode, OutputPort, Page, Principal,
    PrincipalCreate, PrincipalKind, PrincipalUpdate, Product, ProductCreate, ProductStatus, ProductUpdate, Team,
    TeamCreate, TeamUpdate, Visibility, WhoAmI,
};
use tessera_contracts::bundle::{Bundle, BundleContent, BundleKey, BundlePrincipal, BundleProduct};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::names::{NAME_PATTERN, validate_name};

use tessera_contracts::api::{Health, QualityRun, QualityRunCreate, Verification};
use tessera_contracts::odcs::{self, compat};

use crate::authz::{Authz, Caller};
use crate::error::ApiError;
use crate::keys;
use crate::store::{CatalogStore, NewApiKey, NewContract, NewPrincipal, PageRequest, ProductQuery, ProductScope};

mod governance;
pub use governance::{PolicySpec, Typed};

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// Longest a watch may wait before answering with the unchanged version.
pub const MAX_WATCH: Duration = Duration::from_secs(25);

/// The catalog: its store and its authorization rules.
#[derive(Clone)]
pub struct Catalog {
    pub store: Arc<dyn CatalogStore>,
    /// Credentials per storage location, for reading tables' metadata.
    storage: Arc<Vec<tessera_lake::StorageLocation>>,
    pub authz: Authz,
    /// Turns true when the server shuts down, so that parked watches answer at
    /// once instead of holding the shutdown up.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Callers resolved from API keys, by key id.
    callers: Arc<std::sync::Mutex<HashMap<String, KnownCaller>>>,
}

/// How long a resolved caller is reused at most. Within this process every
/// change to keys, principals, teams or grants moves the catalog version and
/// drops the reuse at once; a change made through another replica is seen
/// within this bound.
const CALLER_TTL: Duration = Duration::from_secs(1);
/// Callers kept at most (the map is emptied beyond it).
const CALLERS_KEPT: usize = 10_000;

/// A caller resolved from an API key, with what is needed to check the key
/// again without the store.
#[derive(Clone)]
struct KnownCaller {
    secret_hash: String,
    expires_at: Option<chrono::DateTime<Utc>>,
    caller: Caller,
    /// The catalog version it was resolved at.
    version: i64,
    at: std::time::Instant,
}

/// A listing's paging parameters as given.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page size as given, defaulted and checked.
fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::field("limit", format!("must be between 1 and {MAX_LIMIT}")))
    }
}

impl Paging {
    fn request(&self) -> Result<PageRequest, ApiError> {
        let limit = page_limit(self.limit)?;
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ApiError::BadRequest("cursor is not one this API issued".into()))?,
            ),
        };
        Ok(PageRequest { after, limit })
    }
}

/// Cuts the store's `limit + 1` rows into a page and its cursor.
fn page<T>(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Every row of a keyset-paginated store listing, page by page.
async fn drain<T, F, Fut>(mut fetch: F, key: impl Fn(&T) -> String) -> Result<Vec<T>, ApiError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<Vec<T>>>,
{
    const BATCH: i64 = 500;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut rows = fetch(PageRequest { after, limit: BATCH }).await?;
        let more = rows.len() as i64 > BATCH;
        rows.truncate(BATCH as usize);
        after = rows.last().map(&key);
        out.extend(rows);
        if !more {
            return Ok(out);
        }
    }
}

fn check_name(path: &str, name: &str) -> Result<(), FieldError> {
    validate_name(name).map_err(|e| FieldError {
        path: path.into(),
        message: format!("{name:?} {e} (pattern {NAME_PATTERN})"),
    })
}

fn check_len(errors: &mut Vec<FieldError>, path: &str, value: Option<&String>, max: usize) {
    if let Some(v) = value
        && v.chars().count() > max
    {
        errors.push(FieldError {
            path: path.into(),
            message: format!("must be at most {max} characters"),
        });
    }
}

fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Tags: short, non-empty, sorted and deduplicated.
fn normalize_tags(errors: &mut Vec<FieldError>, path: &str, tags: &[String]) -> Vec<String> {
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.chars().count() > 64 || tag.chars().any(char::is_control) {
            errors.push(FieldError {
                path: format!("{path}[{i}]"),
                message: "a tag has 1 to 64 printable characters".into(),
            });
        }
    }
    if tags.len() > 64 {
        errors.push(FieldError {
            path: path.into(),
            message: "at most 64 tags".into(),
        });
    }
    tags.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

fn check_ports(errors: &mut Vec<FieldError>, ports: &[OutputPort]) {
    let mut majors = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        if port.major_version == 0 {
            errors.push(FieldError {
                path: format!("output_ports[{i}].major_version"),
                message: "major versions start at 1".into(),
            });
        }
        if !majors.insert(port.major_version) {
            errors.push(FieldError {
                path: format!("output_ports[{i}].major_version"),
                message: format!("major version {} has more than one output port", port.major_version),
            });
        }
        let location = port.location.trim();
        if location.is_empty() || location.len() > 2048 || location.chars().any(char::is_control) {
            errors.push(FieldError {
                path: format!("output_ports[{i}].location"),
                message: "a location is a non-empty path or URL of at most 2048 characters".into(),
            });
        }
    }
}

fn check_inputs(errors: &mut Vec<FieldError>, inputs: &[String]) -> Vec<String> {
    for (i, input) in inputs.iter().enumerate() {
        if let Err(message) = tessera_contracts::names::parse_product_ref(input) {
            errors.push(FieldError {
                path: format!("input_ports[{i}]"),
                message,
            });
        }
    }
    inputs.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

fn check_email(errors: &mut Vec<FieldError>, email: Option<&String>) {
    if let Some(email) = email {
        let valid = email.len() <= 320
            && email
                .split_once('@')
                .is_some_and(|(local, host)| !local.is_empty() && host.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            errors.push(FieldError {
                path: "email".into(),
                message: format!("{email:?} is not an e-mail address"),
            });
        }
    }
}

impl Catalog {
    pub fn new(store: Arc<dyn CatalogStore>) -> Self {
        Self {
            store,
            storage: Arc::default(),
            authz: Authz,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            callers: Arc::default(),
        }
    }

    /// The same catalog reading tables with these storage credentials.
    pub fn with_storage(mut self, storage: Vec<tessera_lake::StorageLocation>) -> Self {
        self.storage = Arc::new(storage);
        self
    }

    /// Releases every parked watch; called when the server begins to shut down.
    pub fn stop_watches(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves a presented API key to its caller; `None` when it does not hold.
    /// A key resolved before is checked against its stored hash again and its
    /// caller reused while the catalog has not changed (at most [`CALLER_TTL`]):
    /// a read then costs no query for authentication.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Caller>, ApiError> {
        let Some(parsed) = keys::parse(presented) else {
            return Ok(None);
        };
        // Read before resolving: a change made meanwhile leaves the entry stale.
        let version = *self.store.subscribe().borrow();
        let known = self.known_callers().get(parsed.id).cloned();
        if let Some(known) = known
            && known.version == version
            && known.at.elapsed() < CALLER_TTL
        {
            let live = known.expires_at.is_none_or(|at| at > Utc::now());
            return Ok((live && keys::verify(parsed.secret, &known.secret_hash)).then_some(known.caller));
        }
        let Some(stored) = self.store.find_api_key(parsed.id).await? else {
            return Ok(None);
        };
        let live = stored.key.revoked_at.is_none() && stored.key.expires_at.is_none_or(|at| at > Utc::now());
        if !live || !keys::verify(parsed.secret, &stored.secret_hash) {
            return Ok(None);
        }
        let Some(principal) = self.store.get_principal(&stored.key.principal).await? else {
            return Ok(None);
        };
        let teams = self.store.principal_teams(&principal.name).await?;
        let granted = self.granted_targets(&principal, &teams).await?;
        let caller = Caller {
            principal,
            teams,
            granted,
        };
        let mut callers = self.known_callers();
        if callers.len() >= CALLERS_KEPT {
            callers.clear();
        }
        callers.insert(
            parsed.id.to_string(),
            KnownCaller {
                secret_hash: stored.secret_hash,
                expires_at: stored.key.expires_at,
                caller: caller.clone(),
                version,
                at: std::time::Instant::now(),
            },
        );
        Ok(Some(caller))
    }

    fn known_callers(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownCaller>> {
        self.callers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ------------------------------------------------------------ versions

    pub async fn version(&self) -> Result<CatalogVersion, ApiError> {
        Ok(CatalogVersion {
            version: self.store.version().await?,
        })
    }

    /// Long-poll: answers as soon as the version exceeds `after`, or at the timeout
    /// with the unchanged version. Polls the database once a second as well, so a
    /// change committed by another catalog replica is seen too.
    pub async fn watch(&self, after: i64, timeout: Duration) -> Result<CatalogVersion, ApiError> {
        if after < 0 {
            return Err(ApiError::field("after", "must be 0 or more"));
        }
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WATCH);
        let mut local = self.store.subscribe();
        let mut stopping = self.stopping.subscribe();
        loop {
            let version = self.store.version().await?;
            if version > after || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
                return Ok(CatalogVersion { version });
            }
            let tick = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            tokio::select! {
                _ = tokio::time::timeout_at(tick, local.wait_for(|v| *v > after)) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
        }
    }

    // ------------------------------------------------------------ bundle

    /// The policy bundle, for gateways (admins only: it holds every key's hash).
    pub async fn bundle(&self, caller: &Caller) -> Result<Bundle, ApiError> {
        self.authz.require_admin(caller)?;
        self.build_bundle().await
    }

    /// Takes a consistent snapshot: reads everything, and reads again if the
    /// catalog's version moved meanwhile (every mutation moves it).
    pub async fn build_bundle(&self) -> Result<Bundle, ApiError> {
        loop {
            let version = self.store.version().await?;
            let content = self.bundle_content().await?;
            if self.store.version().await? == version {
                return Ok(Bundle::new(version, content, Utc::now()));
            }
        }
    }

    async fn bundle_content(&self) -> Result<BundleContent, ApiError> {
        let domains: BTreeMap<String, String> = drain(
            |page| async move { self.store.list_domains(&page).await },
            |d: &Domain| d.name.clone(),
        )
        .await?
        .into_iter()
        .map(|d| (d.name, d.owner_team))
        .collect();
        let products = drain(
            |page| async move {
                self.store
                    .list_products(&ProductQuery::unfiltered(ProductScope::All, page))
                    .await
            },
            |p: &Product| format!("{}.{}", p.domain, p.name),
        )
        .await?;
        let mut bundle_products = Vec::with_capacity(products.len());
        for p in products {
            let output_ports = self.bundle_ports(&p).await?;
            bundle_products.push(BundleProduct {
                domain_owner_team: domains.get(&p.domain).cloned().unwrap_or_default(),
                domain: p.domain,
                name: p.name,
                owner_team: p.owner_team,
                visibility: p.visibility,
                status: p.status,
                sunset_date: p.sunset_date,
                tags: p.tags,
                output_ports,
            });
        }
        let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (team, principal) in self.store.memberships().await? {
            teams.entry(principal).or_default().push(team);
        }
        let mut keys: BTreeMap<String, Vec<BundleKey>> = BTreeMap::new();
        for stored in self.store.live_keys().await? {
            keys.entry(stored.key.principal).or_default().push(BundleKey {
                id: stored.key.id,
                secret_hash: stored.secret_hash,
                expires_at: stored.key.expires_at,
            });
        }
        let principals = drain(
            |page| async move { self.store.list_principals(&page).await },
            |p: &Principal| p.name.clone(),
        )
        .await?
        .into_iter()
        .map(|p| BundlePrincipal {
            teams: teams.remove(&p.name).unwrap_or_default(),
            keys: keys.remove(&p.name).unwrap_or_default(),
            name: p.name,
            admin: p.admin,
            attributes: p.attributes,
        })
        .collect();
        let (grants, masks, row_filters) = self.bundle_policies().await?;
        let mut content = BundleContent {
            products: bundle_products,
            principals,
            grants,
            masks,
            row_filters,
        };
        content.canonicalize();
        Ok(content)
    }

    pub async fn changes(&self, caller: &Caller, after: i64, limit: Option<i64>) -> Result<Page<Change>, ApiError> {
        self.authz.require_admin(caller)?;
        if after < 0 {
            return Err(ApiError::field("after", "must be 0 or more"));
        }
        let limit = page_limit(limit)?;
        let mut items = self.store.changes(after, limit + 1).await?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        // The cursor of the change log is simply the last sequence number (`after`).
        let next_cursor = if more {
            items.last().map(|c| c.seq.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    // ------------------------------------------------------------ principals

    pub async fn whoami(&self, caller: &Caller) -> Result<WhoAmI, ApiError> {
        Ok(WhoAmI {
            principal: caller.principal.clone(),
            teams: caller.teams.clone(),
            owned_domains: self.store.owned_domains(caller.name()).await?,
        })
    }

    pub async fn create_principal(&self, caller: &Caller, body: PrincipalCreate) -> Result<Principal, ApiError> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        check_len(&mut errors, "display_name", body.display_name.as_ref(), 200);
        check_email(&mut errors, body.email.as_ref());
        finish(errors)?;
        let new = NewPrincipal {
            display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
            name: body.name,
            kind: body.kind,
            email: body.email,
            admin: body.admin,
            attributes: body.attributes,
        };
        Ok(self.store.create_principal(caller.name(), &new).await?)
    }

    pub async fn get_principal(&self, caller: &Caller, name: &str) -> Result<Principal, ApiError> {
        self.authz.require_self_or_admin(caller, name)?;
        self.store
            .get_principal(name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("principal {name:?} not found")))
    }

    pub async fn list_principals(&self, caller: &Caller, paging: &Paging) -> Result<Page<Principal>, ApiError> {
        self.authz.require_admin(caller)?;
        let request = paging.request()?;
        let rows = self.store.list_principals(&request).await?;
        Ok(page(rows, &request, |p| p.name.clone()))
    }

    pub async fn update_principal(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: PrincipalUpdate,
    ) -> Result<Principal, ApiError> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        check_len(&mut errors, "display_name", body.display_name.as_ref(), 200);
        check_email(&mut errors, body.email.as_ref());
        finish(errors)?;
        Ok(self
            .store
            .update_principal(caller.name(), name, if_match, &body)
            .await?)
    }

    pub async fn delete_principal(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<(), ApiError> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_principal(caller.name(), name, if_match).await?)
    }

    // ------------------------------------------------------------ API keys

    pub async fn create_api_key(
        &self,
        caller: &Caller,
        principal: &str,
        body: ApiKeyCreate,
    ) -> Result<ApiKeyCreated, ApiError> {
        self.authz.require_self_or_admin(caller, principal)?;
        let mut errors = Vec::new();
        check_len(&mut errors, "description", body.description.as_ref(), 200);
        if body.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.push(FieldError {
                path: "expires_at".into(),
                message: "must be in the future".into(),
            });
        }
        finish(errors)?;
        let generated = keys::generate();
        let stored = self
            .store
            .create_api_key(
                caller.name(),
                &NewApiKey {
                    id: generated.id.clone(),
                    principal: principal.to_string(),
                    secret_hash: generated.secret_hash.clone(),
                    description: body.description.unwrap_or_default(),
                    expires_at: body.expires_at,
                },
            )
            .await?;
        Ok(ApiKeyCreated {
            key: generated.key,
            api_key: stored,
        })
    }

    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        principal: &str,
        paging: &Paging,
    ) -> Result<Page<ApiKey>, ApiError> {
        self.authz.require_self_or_admin(caller, principal)?;
        if self.store.get_principal(principal).await?.is_none() {
            return Err(ApiError::NotFound(format!("principal {principal:?} not found")));
        }
        let request = paging.request()?;
        let rows = self.store.list_api_keys(principal, &request).await?;
        Ok(page(rows, &request, |k| k.id.clone()))
    }

    pub async fn revoke_api_key(&self, caller: &Caller, principal: &str, id: &str) -> Result<ApiKey, ApiError> {
        self.authz.require_self_or_admin(caller, principal)?;
        Ok(self.store.revoke_api_key(caller.name(), principal, id).await?)
    }

    /// Installs the first platform admin and its key, once. Returns the key when
    /// it was generated here (and must be shown), `None` when nothing was done or
    /// the key came from the configuration.
    pub async fn bootstrap(&self, configured: Option<&str>) -> anyhow::Result<Option<String>> {
        if self.store.admin_exists().await? {
            return Ok(None);
        }
        let (key, generated) = match configured {
            Some(key) => {
                let parsed = keys::parse(key).ok_or_else(|| {
                    anyhow::anyhow!("the configured bootstrap key is not of the form tsk_<12 hex>_<64 hex>")
                })?;
                (
                    keys::GeneratedKey {
                        id: parsed.id.to_string(),
                        key: key.to_string(),
                        secret_hash: keys::hash_secret(parsed.secret),
                    },
                    false,
                )
            }
            None => (keys::generate(), true),
        };
        let admin = match self.store.get_principal("admin").await? {
            Some(existing) => existing.name,
            None => {
                self.store
                    .create_principal(
                        "system",
                        &NewPrincipal {
                            name: "admin".into(),
                            kind: PrincipalKind::User,
                            display_name: "Platform admin".into(),
                            email: None,
                            admin: true,
                            attributes: Default::default(),
                        },
                    )
                    .await?
                    .name
            }
        };
        self.store
            .create_api_key(
                "system",
                &NewApiKey {
                    id: key.id.clone(),
                    principal: admin,
                    secret_hash: key.secret_hash.clone(),
                    description: "bootstrap admin key".into(),
                    expires_at: None,
                },
            )
            .await?;
        Ok(generated.then_some(key.key))
    }

    // ------------------------------------------------------------ teams

    pub async fn create_team(&self, caller: &Caller, mut body: TeamCreate) -> Result<Team, ApiError> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        for (i, m) in body.members.iter().enumerate() {
            if let Err(e) = check_name(&format!("members[{i}]"), m) {
                errors.push(e);
            }
        }
        finish(errors)?;
        body.members = body.members.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        Ok(self.store.create_team(caller.name(), &body).await?)
    }

    pub async fn get_team(&self, caller: &Caller, name: &str) -> Result<Team, ApiError> {
        self.store
            .get_team(name)
            .await?
            .filter(|_| self.authz.can_see_team(caller))
            .ok_or_else(|| ApiError::NotFound(format!("team {name:?} not found")))
    }

    pub async fn list_teams(&self, caller: &Caller, paging: &Paging) -> Result<Page<Team>, ApiError> {
        if !self.authz.can_see_team(caller) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let request = paging.request()?;
        let rows = self.store.list_teams(&request).await?;
        Ok(page(rows, &request, |t| t.name.clone()))
    }

    pub async fn update_team(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: TeamUpdate,
    ) -> Result<Team, ApiError> {
        self.require_team_manager(caller, name).await?;
        let mut errors = Vec::new();
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        finish(errors)?;
        Ok(self.store.update_team(caller.name(), name, if_match, &body).await?)
    }

    pub async fn delete_team(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<(), ApiError> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_team(caller.name(), name, if_match).await?)
    }

    pub async fn add_team_member(&self, caller: &Caller, team: &str, principal: &str) -> Result<Team, ApiError> {
        self.require_team_manager(caller, team).await?;
        Ok(self.store.add_team_member(caller.name(), team, principal).await?)
    }

    pub async fn remove_team_member(&self, caller: &Caller, team: &str, principal: &str) -> Result<Team, ApiError> {
        self.require_team_manager(caller, team).await?;
        Ok(self.store.remove_team_member(caller.name(), team, principal).await?)
    }

    /// Admins manage every team; a team's own members manage its membership.
    async fn require_team_manager(&self, caller: &Caller, team: &str) -> Result<(), ApiError> {
        let found = self.get_team(caller, team).await?;
        if caller.is_admin() || found.members.iter().any(|m| m == caller.name()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "only platform admins and members of team {team:?} may change it"
            )))
        }
    }

    // ------------------------------------------------------------ domains

    pub async fn create_domain(&self, caller: &Caller, body: DomainCreate) -> Result<Domain, ApiError> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        if let Err(e) = check_name("owner_team", &body.owner_team) {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        finish(errors)?;
        Ok(self.store.create_domain(caller.name(), &body).await?)
    }

    pub async fn get_domain(&self, caller: &Caller, name: &str) -> Result<Domain, ApiError> {
        self.store
            .get_domain(name)
            .await?
            .filter(|d| self.authz.can_see_domain(caller, d))
            .ok_or_else(|| ApiError::NotFound(format!("domain {name:?} not found")))
    }

    pub async fn list_domains(&self, caller: &Caller, paging: &Paging) -> Result<Page<Domain>, ApiError> {
        let request = paging.request()?;
        let rows = self.store.list_domains(&request).await?;
        // The cursor is taken from the unfiltered page, so filtering never skips rows.
        let mut result = page(rows, &request, |d| d.name.clone());
        result.items.retain(|d| self.authz.can_see_domain(caller, d));
        Ok(result)
    }

    pub async fn update_domain(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: DomainUpdate,
    ) -> Result<Domain, ApiError> {
        let domain = self.get_domain(caller, name).await?;
        self.authz.require_domain_owner(caller, &domain)?;
        if body.owner_team.is_some() {
            // Handing a domain to another team is platform administration.
            self.authz.require_admin(caller)?;
        }
        let mut errors = Vec::new();
        if let Some(team) = &body.owner_team
            && let Err(e) = check_name("owner_team", team)
        {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        finish(errors)?;
        Ok(self.store.update_domain(caller.name(), name, if_match, &body).await?)
    }

    pub async fn delete_domain(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<(), ApiError> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_domain(caller.name(), name, if_match).await?)
    }

    // ------------------------------------------------------------ products

    /// The product if the caller may see it, with its domain; "not found" otherwise,
    /// so that restricted products do not reveal that they exist.
    async fn visible_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<(Domain, Product), ApiError> {
        let not_found = || ApiError::NotFound(format!("product {domain}.{name} not found"));
        let owning = self.store.get_domain(domain).await?.ok_or_else(not_found)?;
        let product = self.store.get_product(domain, name).await?.ok_or_else(not_found)?;
        if !self.authz.can_see_product(caller, &owning, &product) {
            return Err(not_found());
        }
        Ok((owning, product))
    }

    async fn owned_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<Product, ApiError> {
        let (owning, product) = self.visible_product(caller, domain, name).await?;
        if !self.authz.owns_product(caller, &owning, &product) {
            return Err(ApiError::Forbidden(format!(
                "only the owners of {domain}.{name} (team {:?} or domain team {:?}) may change it",
                product.owner_team, owning.owner_team
            )));
        }
        Ok(product)
    }

    pub async fn create_product(
        &self,
        caller: &Caller,
        domain: &str,
        mut body: ProductCreate,
    ) -> Result<Product, ApiError> {
        let owning = self.get_domain(caller, domain).await?;
        self.authz.require_domain_owner(caller, &owning)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        if let Some(team) = &body.owner_team
            && let Err(e) = check_name("owner_team", team)
        {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        body.tags = normalize_tags(&mut errors, "tags", &body.tags);
        check_ports(&mut errors, &body.output_ports);
        body.output_ports.sort_by_key(|p| p.major_version);
        body.input_ports = check_inputs(&mut errors, &body.input_ports);
        finish(errors)?;
        Ok(self.store.create_product(caller.name(), domain, &body).await?)
    }

    pub async fn get_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<Product, ApiError> {
        Ok(self.visible_product(caller, domain, name).await?.1)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn list_products(
        &self,
        caller: &Caller,
        domain: Option<String>,
        tag: Option<String>,
        status: Option<ProductStatus>,
        owner_team: Option<String>,
        visibility: Option<Visibility>,
        text: Option<String>,
        paging: &Paging,
    ) -> Result<Page<Product>, ApiError> {
        let request = paging.request()?;
        let mut errors = Vec::new();
        for (path, name) in [("domain", &domain), ("owner", &owner_team)] {
            if let Some(name) = name
                && let Err(e) = check_name(path, name)
            {
                errors.push(e);
            }
        }
        finish(errors)?;
        let query = ProductQuery {
            scope: self.authz.product_scope(caller),
            domain,
            tag,
            status,
            owner_team,
            visibility,
            text: text.filter(|t| !t.trim().is_empty()),
            page: request.clone(),
        };
        let rows = self.store.list_products(&query).await?;
        Ok(page(rows, &request, |p| format!("{}.{}", p.domain, p.name)))
    }

    pub async fn update_product(
        &self,
        caller: &Caller,
        domain: &str,
        name: &str,
        if_match: Option<i64>,
        mut body: ProductUpdate,
    ) -> Result<Product, ApiError> {
        let current = self.owned_product(caller, domain, name).await?;
        if body.status == Some(ProductStatus::Published) && current.status != ProductStatus::Published {
            self.check_publishable(&current).await?;
        }
        let mut errors = Vec::new();
        if let Some(team) = &body.owner_team
            && let Err(e) = check_name("owner_team", team)
        {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        if let Some(tags) = &body.tags {
            body.tags = Some(normalize_tags(&mut errors, "tags", tags));
        }
        if let Some(ports) = &mut body.output_ports {
            check_ports(&mut errors, ports);
            ports.sort_by_key(|p| p.major_version);
        }
        if let Some(inputs) = &body.input_ports {
            body.input_ports = Some(check_inputs(&mut errors, inputs));
        }
        finish(errors)?;
        Ok(self
            .store
            .update_product(caller.name(), domain, name, if_match, &body)
            .await?)
    }

    pub async fn delete_product(
        &self,
        caller: &Caller,
        domain: &str,
        name: &str,
        if_match: Option<i64>,
    ) -> Result<(), ApiError> {
        self.owned_product(caller, domain, name).await?;
        Ok(self.store.delete_product(caller.name(), domain, name, if_match).await?)
    }

    /// Lineage around one product (`focus`), or of the whole mesh the caller sees.
    /// Products the caller may not see are left out, with their edges.
    pub async fn lineage(&self, caller: &Caller, focus: Option<(&str, &str)>) -> Result<Lineage, ApiError> {
        if let Some((domain, name)) = focus {
            self.visible_product(caller, domain, name).await?;
        }
        // The whole visible mesh, fetched page by page.
        let mut visible: BTreeMap<String, LineageNode> = BTreeMap::new();
        let mut paging = PageRequest {
            after: None,
            limit: MAX_LIMIT,
        };
        loop {
            let query = ProductQuery::unfiltered(self.authz.product_scope(caller), paging.clone());
            let rows = self.store.list_products(&query).await?;
            let more = rows.len() > usize::try_from(MAX_LIMIT).unwrap_or(usize::MAX);
            for p in rows.into_iter().take(usize::try_from(MAX_LIMIT).unwrap_or(usize::MAX)) {
                let id = format!("{}.{}", p.domain, p.name);
                paging.after = Some(id.clone());
                visible.insert(
                    id.clone(),
                    LineageNode {
                        id,
                        domain: p.domain,
                        name: p.name,
                        status: p.status,
                    },
                );
            }
            if !more {
                break;
            }
        }
        let edges: Vec<LineageEdge> = self
            .store
            .lineage_edges()
            .await?
            .into_iter()
            .map(|e| LineageEdge {
                from: format!("{}.{}", e.up_domain, e.up_product),
                to: format!("{}.{}", e.domain, e.product),
            })
            .filter(|e| visible.contains_key(&e.from) && visible.contains_key(&e.to))
            .collect();
        let keep: BTreeSet<String> = match focus {
            None => visible.keys().cloned().collect(),
            Some((domain, name)) => {
                // Everything upstream and downstream of the focus, transitively.
                let start = format!("{domain}.{name}");
                let mut keep = BTreeSet::from([start.clone()]);
                for upstream in [true, false] {
                    let mut queue = VecDeque::from([start.clone()]);
                    while let Some(at) = queue.pop_front() {
                        for e in &edges {
                            let (here, next) = if upstream { (&e.to, &e.from) } else { (&e.from, &e.to) };
                            if *here == at && keep.insert(next.clone()) {
                                queue.push_back(next.clone());
                            }
                        }
                    }
                }
                keep
            }
        };
        Ok(Lineage {
            nodes: visible.into_values().filter(|n| keep.contains(&n.id)).collect(),
            edges: edges
                .into_iter()
                .filter(|e| keep.contains(&e.from) && keep.contains(&e.to))
                .collect(),
        })
    }

    // ------------------------------------------------------------ contracts

    pub async fn add_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<ContractVersion, ApiError> {
        let owned = self.owned_product(caller, domain, product).await?;
        let format = content_type
            .and_then(DocumentFormat::from_content_type)
            .ok_or_else(|| {
                ApiError::UnsupportedMediaType("a contract is submitted as application/yaml or application/json".into())
            })?;
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("the contract document is not UTF-8 text".into()))?;
        let contract = read_contract(format, text)?;
        let version =
            semver::Version::parse(&contract.version).map_err(|e| ApiError::field("version", e.to_string()))?;

        // Compatibility with the latest earlier version of the same major.
        let previous = self
            .store
            .all_contracts(domain, product)
            .await?
            .into_iter()
            .filter_map(|c| semver::Version::parse(&c.version).ok().map(|v| (v, c)))
            .filter(|(v, _)| v.major == version.major && *v < version)
            .max_by(|a, b| a.0.cmp(&b.0));
        let mut changes = Vec::new();
        if let Some((previous_version, stored)) = previous
            && let Some(format) = DocumentFormat::from_content_type(&stored.media_type)
            && let Ok(old) = odcs::parse(format, &stored.document)
        {
            let report = compat::compare(&old, &contract, owned.compatibility);
            if report.is_breaking() {
                let violations: Vec<_> = report.breaking().cloned().collect();
                return Err(ApiError::Breaking {
                    detail: format!(
                        "{} breaking change(s) from {previous_version} to {version} under compatibility mode {:?}: \
                         publish them as {}.0.0, a new major version",
                        violations.len(),
                        owned.compatibility.as_str(),
                        version.major + 1
                    ),
                    violations,
                });
            }
            changes = report.changes;
        }

        // The contract must describe its table, where the table already exists.
        if let Some(verification) = self.verify_against_table(&owned, &contract).await?
            && !verification.mismatches.is_empty()
        {
            return Err(ApiError::TableMismatch {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                detail: format!(
                    "the Delta table at {} does not match the contract: {}",
                    verification.location,
                    verification
                        .mismatches
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                mismatches: verification.mismatches,
            });
        }
        let new = NewContract {
            version,
            api_version: Some(contract.api_version.clone()),
            media_type: format.media_type().to_string(),
            document: text.to_string(),
            changes,
        };
        Ok(self.store.add_contract(caller.name(), domain, product, &new).await?)
    }

    /// Verifies a contract against the Delta table of its major version's output
    /// port; `None` when the product has no port for that major version.
    async fn verify_against_table(
        &self,
        product: &Product,
        contract: &odcs::DataContract,
    ) -> Result<Option<Verification>, ApiError> {
        let major = semver::Version::parse(&contract.version)
            .map(|v| v.major)
            .unwrap_or_default();
        let Some(port) = product
            .output_ports
            .iter()
            .find(|p| u64::from(p.major_version) == major)
        else {
            return Ok(None);
        };
        let options = tessera_lake::storage_options_for(&self.storage, &port.location);
        let meta = tessera_lake::table_meta(&port.location, &options)
            .await
            .map_err(|e| ApiError::field(format!("output_ports[major_version={major}]"), e.to_string()))?;
        let Some(meta) = meta else {
            return Ok(Some(Verification {
                contract_version: contract.version.clone(),
                location: port.location.clone(),
                table_version: None,
                table_exists: false,
                mismatches: Vec::new(),
            }));
        };
        let mismatches = match contract.schema.as_deref() {
            Some([object, ..]) => odcs::arrow::verify(object, &meta.schema, &meta.partition_columns),
            _ => vec![tessera_contracts::api::Mismatch {
                rule: "missing-schema".into(),
                path: "schema".into(),
                expected: "a schema object describing the output port".into(),
                actual: format!("a table of {} columns", meta.schema.fields().len()),
            }],
        };
        Ok(Some(Verification {
            contract_version: contract.version.clone(),
            location: port.location.clone(),
            table_version: Some(meta.version),
            table_exists: true,
            mismatches,
        }))
    }

    /// Verifies a stored contract version against the product's table, on demand.
    pub async fn verify_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        version: &str,
    ) -> Result<Verification, ApiError> {
        let (_, found) = self.visible_product(caller, domain, product).await?;
        let stored = self.get_contract(caller, domain, product, version).await?;
        let contract = stored_contract(&stored)?;
        self.verify_against_table(&found, &contract).await?.ok_or_else(|| {
            ApiError::Conflict(format!(
                "{domain}.{product} has no output port for major version {}",
                contract.version.split('.').next().unwrap_or("?")
            ))
        })
    }

    /// Publication needs the latest contract's table to exist and match it.
    async fn check_publishable(&self, product: &Product) -> Result<(), ApiError> {
        let Some(latest) = &product.latest_contract_version else {
            return Ok(()); // the store refuses it, with its own message
        };
        let stored = self
            .store
            .get_contract(&product.domain, &product.name, latest)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("contract version {latest}")))?;
        let contract = stored_contract(&stored)?;
        let refuse = |detail: String, mismatches| ApiError::TableMismatch {
            status: axum::http::StatusCode::CONFLICT,
            detail,
            mismatches,
        };
        match self.verify_against_table(product, &contract).await? {
            None => Err(refuse(
                format!(
                    "{}.{} cannot be published: it has no output port for major version {} of its contract",
                    product.domain,
                    product.name,
                    latest.split('.').next().unwrap_or("?")
                ),
                Vec::new(),
            )),
            Some(v) if !v.table_exists => Err(refuse(
                format!(
                    "{}.{} cannot be published: there is no Delta table at {}",
                    product.domain, product.name, v.location
                ),
                Vec::new(),
            )),
            Some(v) if !v.mismatches.is_empty() => Err(refuse(
                format!(
                    "{}.{} cannot be published: its table does not match contract {latest}",
                    product.domain, product.name
                ),
                v.mismatches,
            )),
            Some(_) => Ok(()),
        }
    }

    // ------------------------------------------------------------ quality

    pub async fn add_quality_run(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        run: QualityRunCreate,
    ) -> Result<QualityRun, ApiError> {
        self.owned_product(caller, domain, product).await?;
        let mut errors = Vec::new();
        if run.results.len() > 10_000 {
            errors.push(FieldError {
                path: "results".into(),
                message: "at most 10000 results".into(),
            });
        }
        for (i, r) in run.results.iter().enumerate() {
            for (field, value, max) in [("key", &r.key, 500), ("path", &r.path, 500), ("rule", &r.rule, 100)] {
                if value.is_empty() || value.chars().count() > max {
                    errors.push(FieldError {
                        path: format!("results[{i}].{field}"),
                        message: format!("must have 1 to {max} characters"),
                    });
                }
            }
            if r.measured.is_some_and(|m| !m.is_finite()) {
                errors.push(FieldError {
                    path: format!("results[{i}].measured"),
                    message: "must be a finite number".into(),
                });
            }
        }
        finish(errors)?;
        let health = Health::of(&run.results);
        Ok(self
            .store
            .add_quality_run(caller.name(), domain, product, &run, health)
            .await?)
    }

    pub async fn list_quality_runs(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<QualityRun>, ApiError> {
        self.visible_product(caller, domain, product).await?;
        let request = paging.request()?;
        let rows = self.store.list_quality_runs(domain, product, &request).await?;
        Ok(page(rows, &request, |r| r.id.to_string()))
    }

    pub async fn list_contracts(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<ContractVersionSummary>, ApiError> {
        self.visible_product(caller, domain, product).await?;
        let request = paging.request()?;
        let rows = self.store.list_contracts(domain, product, &request).await?;
        Ok(page(rows, &request, |c| c.version.clone()))
    }

    pub async fn get_contract(
        &self,
        caller: &Caller,
        domain: &str,
        product: &str,
        version: &str,
    ) -> Result<ContractVersion, ApiError> {
        self.visible_product(caller, domain, product).await?;
        self.store
            .get_contract(domain, product, version)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("contract version {version} of {domain}.{product} not found")))
    }
}

/// Reads a submitted contract: 400 for a document that is not YAML/JSON, 422 with
/// every issue and its path for one that is not a valid ODCS contract.
fn read_contract(format: DocumentFormat, text: &str) -> Result<odcs::DataContract, ApiError> {
    odcs::read(format, text).map_err(|e| match e {
        odcs::ReadError::Syntax { format, message } => {
            ApiError::BadRequest(format!("the contract is not valid {format}: {message}"))
        }
        odcs::ReadError::Invalid(issues) => ApiError::Validation(
            issues
                .into_iter()
                .map(|i| FieldError {
                    path: i.path,
                    message: i.message,
                })
                .collect(),
        ),
    })
}

/// Reads a stored contract version (stored only after it was read once).
fn stored_contract(stored: &ContractVersion) -> Result<odcs::DataContract, ApiError> {
    let format = DocumentFormat::from_content_type(&stored.media_type)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored media type {}", stored.media_type)))?;
    odcs::parse(format, &stored.document).map_err(|e| {
        ApiError::Conflict(format!(
            "contract version {} predates ODCS validation and cannot be read: {e}",
            stored.version
        ))
    })
}
