//! Tessera's Rust SDK: a typed client of the catalog's REST API.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
pub use tessera_contracts::api;
use tessera_contracts::api::{
    ApiKeyCreate, ApiKeyCreated, CatalogVersion, ContractVersion, Domain, DomainCreate, DomainUpdate, Page, Problem,
    Product, ProductCreate, ProductUpdate, QualityRun, QualityRunCreate, Team, TeamCreate, WhoAmI,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog answered with a problem.
    #[error("{status}: {}", problem.detail.as_deref().unwrap_or(&problem.title))]
    Api { status: StatusCode, problem: Box<Problem> },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid API key: it cannot be sent as a header")]
    InvalidKey,
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A resource with the ETag it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub etag: Option<String>,
    pub value: T,
}

/// A client of one catalog, authenticated with one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `base` is the catalog's root URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: impl Into<String>, api_key: &str) -> Result<Self> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| Error::InvalidKey)?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder().default_headers(headers).build()?;
        Ok(Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        if_match: Option<&str>,
    ) -> Result<Versioned<T>> {
        let mut request = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(etag) = if_match {
            request = request.header(IF_MATCH, etag);
        }
        let response = request.send().await?;
        let status = response.status();
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !status.is_success() {
            let problem = response.json::<Problem>().await.unwrap_or_else(|_| {
                Problem::new(
                    "about:blank",
                    status.canonical_reason().unwrap_or("error"),
                    status.as_u16(),
                )
            });
            return Err(Error::Api {
                status,
                problem: Box::new(problem),
            });
        }
        let value = response.json::<T>().await?;
        Ok(Versioned { etag, value })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Versioned<T>> {
        self.call::<(), T>(Method::GET, path, None, None).await
    }

    pub async fn whoami(&self) -> Result<WhoAmI> {
        Ok(self.get("/whoami").await?.value)
    }

    pub async fn version(&self) -> Result<i64> {
        Ok(self.get::<CatalogVersion>("/version").await?.value.version)
    }

    /// Waits up to `timeout_secs` for the catalog's version to pass `after`.
    pub async fn watch(&self, after: i64, timeout_secs: u64) -> Result<i64> {
        let path = format!("/version/watch?after={after}&timeout_secs={timeout_secs}");
        Ok(self.get::<CatalogVersion>(&path).await?.value.version)
    }

    pub async fn create_team(&self, team: &TeamCreate) -> Result<Team> {
        Ok(self.call(Method::POST, "/teams", Some(team), None).await?.value)
    }

    pub async fn create_api_key(&self, principal: &str, key: &ApiKeyCreate) -> Result<ApiKeyCreated> {
        let path = format!("/principals/{principal}/keys");
        Ok(self.call(Method::POST, &path, Some(key), None).await?.value)
    }

    pub async fn create_domain(&self, domain: &DomainCreate) -> Result<Domain> {
        Ok(self.call(Method::POST, "/domains", Some(domain), None).await?.value)
    }

    pub async fn domain(&self, name: &str) -> Result<Versioned<Domain>> {
        self.get(&format!("/domains/{name}")).await
    }

    pub async fn update_domain(&self, name: &str, patch: &DomainUpdate, if_match: Option<&str>) -> Result<Domain> {
        let path = format!("/domains/{name}");
        Ok(self.call(Method::PATCH, &path, Some(patch), if_match).await?.value)
    }

    pub async fn domains(&self) -> Result<Page<Domain>> {
        Ok(self.get("/domains").await?.value)
    }

    pub async fn create_product(&self, domain: &str, product: &ProductCreate) -> Result<Product> {
        let path = format!("/domains/{domain}/products");
        Ok(self.call(Method::POST, &path, Some(product), None).await?.value)
    }

    pub async fn product(&self, domain: &str, name: &str) -> Result<Versioned<Product>> {
        self.get(&format!("/domains/{domain}/products/{name}")).await
    }

    pub async fn update_product(
        &self,
        domain: &str,
        name: &str,
        patch: &ProductUpdate,
        if_match: Option<&str>,
    ) -> Result<Product> {
        let path = format!("/domains/{domain}/products/{name}");
        Ok(self.call(Method::PATCH, &path, Some(patch), if_match).await?.value)
    }

    /// One contract version, with its document as submitted.
    pub async fn contract(&self, domain: &str, product: &str, version: &str) -> Result<ContractVersion> {
        Ok(self
            .get(&format!("/domains/{domain}/products/{product}/contracts/{version}"))
            .await?
            .value)
    }

    /// Reports a quality run measured in the data plane.
    pub async fn report_quality(&self, domain: &str, product: &str, run: &QualityRunCreate) -> Result<QualityRun> {
        let path = format!("/domains/{domain}/products/{product}/quality");
        Ok(self.call(Method::POST, &path, Some(run), None).await?.value)
    }
}
