//! The catalog's REST API, one method per operation of [`crate::ops`].

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use tessera_contracts::api::{
    AccessApproval, AccessDenial, AccessRequest, AccessRequestCreate, ApiKey, ApiKeyCreate, ApiKeyCreated, AuditBatch,
    CatalogVersion, Change, ContractVersion, ContractVersionSummary, Domain, DomainCreate, DomainUpdate, GatewayReport,
    GatewayStatus, Lineage, Page, Principal, PrincipalCreate, PrincipalUpdate, Problem, Product, ProductCreate,
    ProductUpdate, QualityRun, QualityRunCreate, Readiness, Team, TeamCreate, TeamUpdate, UsageRecord, Verification,
    WhoAmI,
};
use tessera_contracts::bundle::Bundle;
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::policy::{Grant, GrantSpec, Mask, MaskSpec, RowFilter, RowFilterSpec};

use crate::{
    AccessRequestParams, ChangeParams, Client, Document, Error, Paging, PolicyParams, ProductParams, Result, Versioned,
    WatchParams, check, header, json, no_content, ops, versioned, with_if_match,
};

impl Client {
    // ------------------------------------------------------------ system

    /// Liveness: the catalog process answers.
    pub async fn health(&self) -> Result<Readiness> {
        json(self.request(&ops::HEALTH, &[])).await
    }

    /// Readiness, also when not ready (503): `status` is `ready` or `unavailable`, with each check.
    pub async fn ready(&self) -> Result<Readiness> {
        let response = self.request(&ops::READY, &[]).send().await?;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            return Ok(check(response).await?.json().await?);
        }
        let body = response.bytes().await?;
        serde_json::from_slice::<Readiness>(&body).map_err(|_| Error::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            problem: Box::new(
                serde_json::from_slice::<Problem>(&body)
                    .unwrap_or_else(|_| Problem::new("about:blank", "Service Unavailable", 503)),
            ),
        })
    }

    /// The catalog's Prometheus metrics, in the text exposition format.
    pub async fn metrics(&self) -> Result<String> {
        Ok(check(self.request(&ops::METRICS, &[]).send().await?)
            .await?
            .text()
            .await?)
    }

    // ------------------------------------------------------------ changes

    /// The catalog's version: the latest value of its change sequence.
    pub async fn version(&self) -> Result<i64> {
        Ok(json::<CatalogVersion>(self.request(&ops::VERSION, &[])).await?.version)
    }

    /// Waits up to `timeout_secs` (at most 25) for the catalog's version to pass `after`.
    pub async fn watch(&self, after: i64, timeout_secs: u64) -> Result<i64> {
        let params = WatchParams { after, timeout_secs };
        let request = self.request(&ops::WATCH, &[]).query(&params);
        Ok(json::<CatalogVersion>(request).await?.version)
    }

    /// A page of the append-only change log (platform admins).
    pub async fn changes(&self, params: &ChangeParams) -> Result<Page<Change>> {
        json(self.request(&ops::CHANGES, &[]).query(params)).await
    }

    // ------------------------------------------------------------ principals

    /// The OpenID Connect issuers people may sign in to the portal with.
    pub async fn sign_in_issuers(&self) -> Result<Vec<tessera_contracts::api::SignInIssuer>> {
        json(self.request(&ops::SIGN_IN_ISSUERS, &[])).await
    }

    /// The caller: its principal, teams and owned domains.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        json(self.request(&ops::WHOAMI, &[])).await
    }

    /// A page of principals.
    pub async fn principals(&self, paging: &Paging) -> Result<Page<Principal>> {
        json(self.request(&ops::LIST_PRINCIPALS, &[]).query(paging)).await
    }

    /// Creates a principal (a user or a service account).
    pub async fn create_principal(&self, principal: &PrincipalCreate) -> Result<Principal> {
        json(self.request(&ops::CREATE_PRINCIPAL, &[]).json(principal)).await
    }

    /// One principal, with its ETag.
    pub async fn principal(&self, name: &str) -> Result<Versioned<Principal>> {
        versioned(self.request(&ops::GET_PRINCIPAL, &[name])).await
    }

    /// Updates a principal; `if_match` is the ETag the update is based on.
    pub async fn update_principal(
        &self,
        name: &str,
        patch: &PrincipalUpdate,
        if_match: Option<&str>,
    ) -> Result<Principal> {
        let request = self.request(&ops::UPDATE_PRINCIPAL, &[name]).json(patch);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a principal, with its keys and memberships.
    pub async fn delete_principal(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_PRINCIPAL, &[name]), if_match)).await
    }

    /// A page of a principal's API keys (without their secrets).
    pub async fn api_keys(&self, principal: &str, paging: &Paging) -> Result<Page<ApiKey>> {
        json(self.request(&ops::LIST_API_KEYS, &[principal]).query(paging)).await
    }

    /// Issues an API key to a principal; its secret is in this answer only.
    pub async fn create_api_key(&self, principal: &str, key: &ApiKeyCreate) -> Result<ApiKeyCreated> {
        json(self.request(&ops::CREATE_API_KEY, &[principal]).json(key)).await
    }

    /// Revokes an API key at once, answering the revoked key.
    pub async fn revoke_api_key(&self, principal: &str, key_id: &str) -> Result<ApiKey> {
        json(self.request(&ops::REVOKE_API_KEY, &[principal, key_id])).await
    }

    // ------------------------------------------------------------ teams

    /// A page of teams.
    pub async fn teams(&self, paging: &Paging) -> Result<Page<Team>> {
        json(self.request(&ops::LIST_TEAMS, &[]).query(paging)).await
    }

    /// Creates a team.
    pub async fn create_team(&self, team: &TeamCreate) -> Result<Team> {
        json(self.request(&ops::CREATE_TEAM, &[]).json(team)).await
    }

    /// One team, with its ETag.
    pub async fn team(&self, name: &str) -> Result<Versioned<Team>> {
        versioned(self.request(&ops::GET_TEAM, &[name])).await
    }

    /// Updates a team; `if_match` is the ETag the update is based on.
    pub async fn update_team(&self, name: &str, patch: &TeamUpdate, if_match: Option<&str>) -> Result<Team> {
        let request = self.request(&ops::UPDATE_TEAM, &[name]).json(patch);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a team.
    pub async fn delete_team(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_TEAM, &[name]), if_match)).await
    }

    /// Adds a member to a team (idempotent), answering the team.
    pub async fn add_team_member(&self, team: &str, principal: &str) -> Result<Team> {
        json(self.request(&ops::ADD_TEAM_MEMBER, &[team, principal])).await
    }

    /// Removes a member from a team, answering the team.
    pub async fn remove_team_member(&self, team: &str, principal: &str) -> Result<Team> {
        json(self.request(&ops::REMOVE_TEAM_MEMBER, &[team, principal])).await
    }

    // ------------------------------------------------------------ domains

    /// A page of domains.
    pub async fn domains(&self, paging: &Paging) -> Result<Page<Domain>> {
        json(self.request(&ops::LIST_DOMAINS, &[]).query(paging)).await
    }

    /// Creates a domain, owned by a team.
    pub async fn create_domain(&self, domain: &DomainCreate) -> Result<Domain> {
        json(self.request(&ops::CREATE_DOMAIN, &[]).json(domain)).await
    }

    /// One domain, with its ETag.
    pub async fn domain(&self, name: &str) -> Result<Versioned<Domain>> {
        versioned(self.request(&ops::GET_DOMAIN, &[name])).await
    }

    /// Updates a domain; `if_match` is the ETag the update is based on.
    pub async fn update_domain(&self, name: &str, patch: &DomainUpdate, if_match: Option<&str>) -> Result<Domain> {
        let request = self.request(&ops::UPDATE_DOMAIN, &[name]).json(patch);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a domain.
    pub async fn delete_domain(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_DOMAIN, &[name]), if_match)).await
    }

    // ------------------------------------------------------------ products

    /// A page of the products the caller may see, across domains, filtered and searched.
    pub async fn products(&self, params: &ProductParams) -> Result<Page<Product>> {
        json(self.request(&ops::LIST_PRODUCTS, &[]).query(params)).await
    }

    /// A page of one domain's products.
    pub async fn domain_products(&self, domain: &str, paging: &Paging) -> Result<Page<Product>> {
        json(self.request(&ops::LIST_DOMAIN_PRODUCTS, &[domain]).query(paging)).await
    }

    /// Registers a product, as `draft`, in a domain the caller owns.
    pub async fn create_product(&self, domain: &str, product: &ProductCreate) -> Result<Product> {
        json(self.request(&ops::CREATE_PRODUCT, &[domain]).json(product)).await
    }

    /// One product, with its ETag.
    pub async fn product(&self, domain: &str, name: &str) -> Result<Versioned<Product>> {
        versioned(self.request(&ops::GET_PRODUCT, &[domain, name])).await
    }

    /// Updates a product (a change of `status` is a lifecycle transition); `if_match` is its ETag.
    pub async fn update_product(
        &self,
        domain: &str,
        name: &str,
        patch: &ProductUpdate,
        if_match: Option<&str>,
    ) -> Result<Product> {
        let request = self.request(&ops::UPDATE_PRODUCT, &[domain, name]).json(patch);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a draft or retired product that no other product reads.
    pub async fn delete_product(&self, domain: &str, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(
            self.request(&ops::DELETE_PRODUCT, &[domain, name]),
            if_match,
        ))
        .await
    }

    // ------------------------------------------------------------ lineage

    /// A product's lineage: everything upstream and downstream of it.
    pub async fn product_lineage(&self, domain: &str, product: &str) -> Result<Lineage> {
        json(self.request(&ops::PRODUCT_LINEAGE, &[domain, product])).await
    }

    /// The lineage graph of every product the caller may see.
    pub async fn lineage(&self) -> Result<Lineage> {
        json(self.request(&ops::LINEAGE, &[])).await
    }

    // ------------------------------------------------------------ contracts

    /// A page of a product's contract versions (without documents), in semantic-version order.
    pub async fn contracts(
        &self,
        domain: &str,
        product: &str,
        paging: &Paging,
    ) -> Result<Page<ContractVersionSummary>> {
        json(self.request(&ops::LIST_CONTRACTS, &[domain, product]).query(paging)).await
    }

    /// Registers a new contract version: the ODCS document, sent as is in its format.
    pub async fn add_contract(
        &self,
        domain: &str,
        product: &str,
        format: DocumentFormat,
        document: &str,
    ) -> Result<ContractVersion> {
        let request = self
            .request(&ops::ADD_CONTRACT, &[domain, product])
            .header(CONTENT_TYPE, format.media_type())
            .body(document.to_owned());
        json(request).await
    }

    /// One contract version, with its document as submitted.
    pub async fn contract(&self, domain: &str, product: &str, version: &str) -> Result<ContractVersion> {
        json(self.request(&ops::GET_CONTRACT, &[domain, product, version])).await
    }

    /// A contract version's document exactly as submitted, with its media type.
    pub async fn contract_document(&self, domain: &str, product: &str, version: &str) -> Result<Document> {
        let request = self.request(&ops::GET_CONTRACT_DOCUMENT, &[domain, product, version]);
        let response = check(request.send().await?).await?;
        let media_type = header(&response, CONTENT_TYPE).unwrap_or_default();
        Ok(Document {
            media_type,
            text: response.text().await?,
        })
    }

    /// Checks a contract version against the product's Delta table, naming every mismatch.
    pub async fn verify_contract(&self, domain: &str, product: &str, version: &str) -> Result<Verification> {
        json(self.request(&ops::VERIFY_CONTRACT, &[domain, product, version])).await
    }

    // ------------------------------------------------------------ quality

    /// A page of a product's quality runs, newest first.
    pub async fn quality_runs(&self, domain: &str, product: &str, paging: &Paging) -> Result<Page<QualityRun>> {
        json(self.request(&ops::LIST_QUALITY_RUNS, &[domain, product]).query(paging)).await
    }

    /// Reports a quality run measured in the data plane.
    pub async fn report_quality(&self, domain: &str, product: &str, run: &QualityRunCreate) -> Result<QualityRun> {
        json(self.request(&ops::ADD_QUALITY_RUN, &[domain, product]).json(run)).await
    }

    // ------------------------------------------------------------ gateways

    /// The policy bundle (admins), or `None` when `if_none_match` is the current bundle's ETag.
    pub async fn bundle(&self, if_none_match: Option<&str>) -> Result<Option<Versioned<Bundle>>> {
        let mut request = self.request(&ops::BUNDLE, &[]);
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let response = check(response).await?;
        let etag = header(&response, ETAG);
        let value = response.json::<Bundle>().await?;
        Ok(Some(Versioned { etag, value }))
    }

    /// Every gateway that reported, with the bundle it serves: SYNCED, STALE or NACKED.
    pub async fn gateways(&self) -> Result<Vec<GatewayStatus>> {
        json(self.request(&ops::LIST_GATEWAYS, &[])).await
    }

    /// Reports (ACK or NACK) the bundle the gateway `name` serves.
    pub async fn report_gateway(&self, name: &str, report: &GatewayReport) -> Result<()> {
        no_content(self.request(&ops::REPORT_GATEWAY, &[name]).json(report)).await
    }

    /// Sends a batch of a gateway's query audit records.
    pub async fn add_audit(&self, batch: &AuditBatch) -> Result<()> {
        no_content(self.request(&ops::ADD_AUDIT, &[]).json(batch)).await
    }

    // ------------------------------------------------------------ policies

    /// A page of grants (admins: all; domain owners: pass `domain`).
    pub async fn grants(&self, params: &PolicyParams) -> Result<Page<Grant>> {
        json(self.request(&ops::LIST_GRANTS, &[]).query(params)).await
    }

    /// Creates a grant, in force on every gateway with the next bundle.
    pub async fn create_grant(&self, grant: &GrantSpec) -> Result<Grant> {
        json(self.request(&ops::CREATE_GRANT, &[]).json(grant)).await
    }

    /// One grant, with its ETag.
    pub async fn grant(&self, name: &str) -> Result<Versioned<Grant>> {
        versioned(self.request(&ops::GET_GRANT, &[name])).await
    }

    /// Replaces a grant; `if_match` is the ETag the replacement is based on.
    pub async fn replace_grant(&self, name: &str, grant: &GrantSpec, if_match: Option<&str>) -> Result<Grant> {
        let request = self.request(&ops::REPLACE_GRANT, &[name]).json(grant);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a grant.
    pub async fn delete_grant(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_GRANT, &[name]), if_match)).await
    }

    /// A page of column masks (admins: all; domain owners: pass `domain`).
    pub async fn masks(&self, params: &PolicyParams) -> Result<Page<Mask>> {
        json(self.request(&ops::LIST_MASKS, &[]).query(params)).await
    }

    /// Creates a column mask, in force on every gateway with the next bundle.
    pub async fn create_mask(&self, mask: &MaskSpec) -> Result<Mask> {
        json(self.request(&ops::CREATE_MASK, &[]).json(mask)).await
    }

    /// One column mask, with its ETag.
    pub async fn mask(&self, name: &str) -> Result<Versioned<Mask>> {
        versioned(self.request(&ops::GET_MASK, &[name])).await
    }

    /// Replaces a column mask; `if_match` is the ETag the replacement is based on.
    pub async fn replace_mask(&self, name: &str, mask: &MaskSpec, if_match: Option<&str>) -> Result<Mask> {
        let request = self.request(&ops::REPLACE_MASK, &[name]).json(mask);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a column mask.
    pub async fn delete_mask(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_MASK, &[name]), if_match)).await
    }

    /// A page of row filters (admins: all; domain owners: pass `domain`).
    pub async fn row_filters(&self, params: &PolicyParams) -> Result<Page<RowFilter>> {
        json(self.request(&ops::LIST_ROW_FILTERS, &[]).query(params)).await
    }

    /// Creates a row filter, in force on every gateway with the next bundle.
    pub async fn create_row_filter(&self, filter: &RowFilterSpec) -> Result<RowFilter> {
        json(self.request(&ops::CREATE_ROW_FILTER, &[]).json(filter)).await
    }

    /// One row filter, with its ETag.
    pub async fn row_filter(&self, name: &str) -> Result<Versioned<RowFilter>> {
        versioned(self.request(&ops::GET_ROW_FILTER, &[name])).await
    }

    /// Replaces a row filter; `if_match` is the ETag the replacement is based on.
    pub async fn replace_row_filter(
        &self,
        name: &str,
        filter: &RowFilterSpec,
        if_match: Option<&str>,
    ) -> Result<RowFilter> {
        let request = self.request(&ops::REPLACE_ROW_FILTER, &[name]).json(filter);
        json(with_if_match(request, if_match)).await
    }

    /// Deletes a row filter.
    pub async fn delete_row_filter(&self, name: &str, if_match: Option<&str>) -> Result<()> {
        no_content(with_if_match(self.request(&ops::DELETE_ROW_FILTER, &[name]), if_match)).await
    }

    /// Rotates the mesh's key for `hash` masks (admins): every masked value
    /// changes with the next bundle; joins within one bundle version still match.
    pub async fn rotate_mask_key(&self) -> Result<()> {
        no_content(self.request(&ops::ROTATE_MASK_KEY, &[])).await
    }

    // ------------------------------------------------------------ access

    /// Asks a product's owners for access to its data, for a purpose.
    pub async fn request_access(
        &self,
        domain: &str,
        product: &str,
        request: &AccessRequestCreate,
    ) -> Result<AccessRequest> {
        json(self.request(&ops::REQUEST_ACCESS, &[domain, product]).json(request)).await
    }

    /// A page of access requests: the caller's, and those for products it owns (admins: all).
    pub async fn access_requests(&self, params: &AccessRequestParams) -> Result<Page<AccessRequest>> {
        json(self.request(&ops::LIST_ACCESS_REQUESTS, &[]).query(params)).await
    }

    /// One access request.
    pub async fn access_request(&self, id: i64) -> Result<AccessRequest> {
        json(self.request(&ops::GET_ACCESS_REQUEST, &[&id.to_string()])).await
    }

    /// Approves a pending access request: a grant to its requester, for its purpose.
    pub async fn approve_access(&self, id: i64, approval: &AccessApproval) -> Result<AccessRequest> {
        json(self.request(&ops::APPROVE_ACCESS, &[&id.to_string()]).json(approval)).await
    }

    /// Denies a pending access request.
    pub async fn deny_access(&self, id: i64, denial: &AccessDenial) -> Result<AccessRequest> {
        json(self.request(&ops::DENY_ACCESS, &[&id.to_string()]).json(denial)).await
    }

    /// A page of a product's usage from the gateways' audit, newest first (owners and admins).
    pub async fn usage(&self, domain: &str, product: &str, paging: &Paging) -> Result<Page<UsageRecord>> {
        json(self.request(&ops::PRODUCT_USAGE, &[domain, product]).query(paging)).await
    }
}
