//! Data products: registration, listing and search, lifecycle, and lineage.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use tessera_contracts::api::{
    Domain, FieldError, Health, Lineage, LineageEdge, LineageNode, OutputPort, Page, Product, ProductCreate,
    ProductStatus, ProductUpdate, Visibility,
};

use super::validate::{MAX_LIMIT, check_inputs, check_len, check_name, check_ports, finish, normalize_tags, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;
use crate::storage;
use crate::store::{PageRequest, ProductQuery, StoreError};

/// Products (as `(domain, product)`) that some gateway currently reports drifting.
pub(super) type Drifted = HashSet<(String, String)>;

/// A product as `caller` sees it: the locations of its output ports only for
/// its owners (and admins), and its health `drifted` while a gateway reports
/// its table drifting from its contract.
fn present(owner: bool, drifted: &Drifted, mut product: Product) -> Product {
    if !owner {
        for port in &mut product.output_ports {
            port.location = None;
        }
    }
    if drifted.contains(&(product.domain.clone(), product.name.clone())) {
        product.health = Health::Drifted;
    }
    product
}

/// Normalises output ports' locations to absolute URLs (a relative path
/// against the domain's first storage root, local paths with their links
/// resolved) and checks that each lies under one of the domain's roots and
/// that the product's own ports do not overlap.
fn normalize_ports(errors: &mut Vec<FieldError>, domain: &Domain, ports: &mut [OutputPort]) {
    let roots = &domain.storage_roots;
    let mut done: Vec<(u32, String)> = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter_mut().enumerate() {
        let path = format!("output_ports[{i}].location");
        let Some(raw) = port.location.as_deref() else { continue };
        if errors.iter().any(|e| e.path == path) {
            continue;
        }
        let refuse = |message: String| FieldError {
            path: path.clone(),
            message,
        };
        match storage::normalize_location(raw, roots.first().map(String::as_str)) {
            Ok(location) if !storage::under_roots(&location, roots) => errors.push(refuse(if roots.is_empty() {
                format!("domain {:?} has no storage roots yet: an admin sets them", domain.name)
            } else {
                format!(
                    "{location} does not lie under the storage roots of domain {:?}: {}",
                    domain.name,
                    roots.join(", ")
                )
            })),
            Ok(location) => {
                if let Some((major, _)) = done.iter().find(|(_, l)| storage::overlaps(l, &location)) {
                    errors.push(refuse(format!(
                        "{location} overlaps the location of this product's output port v{major}"
                    )));
                }
                done.push((port.major_version, location.clone()));
                port.location = Some(location);
            }
            Err(message) => errors.push(refuse(message)),
        }
    }
}

/// A location taken by another product: admins are told which.
fn location_conflict(caller: &Caller, err: StoreError) -> Error {
    match err {
        StoreError::LocationOverlap { port, owner } if caller.is_admin() => {
            Error::Conflict(format!("{port}: the location overlaps the storage of {owner}"))
        }
        other => other.into(),
    }
}

impl Catalog {
    /// The product if the caller may see it, with its domain; "not found" otherwise,
    /// so that restricted products do not reveal that they exist.
    pub(super) async fn visible_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<(Domain, Product)> {
        let not_found = || Error::NotFound(format!("product {domain}.{name} not found"));
        let owning = self.store.get_domain(domain).await?.ok_or_else(not_found)?;
        let product = self.store.get_product(domain, name).await?.ok_or_else(not_found)?;
        if !self.authz.can_see_product(caller, &owning, &product) {
            return Err(not_found());
        }
        Ok((owning, product))
    }

    pub(super) async fn owned_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<Product> {
        Ok(self.owned_product_in(caller, domain, name).await?.1)
    }

    /// The product, which the caller must own, with its domain.
    async fn owned_product_in(&self, caller: &Caller, domain: &str, name: &str) -> Result<(Domain, Product)> {
        let (owning, product) = self.visible_product(caller, domain, name).await?;
        if !self.authz.owns_product(caller, &owning, &product) {
            return Err(Error::Forbidden(format!(
                "only the owners of {domain}.{name} (team {:?} or domain team {:?}) may change it",
                product.owner_team, owning.owner_team
            )));
        }
        Ok((owning, product))
    }

    pub async fn create_product(&self, caller: &Caller, domain: &str, mut body: ProductCreate) -> Result<Product> {
        let owning = self.visible_domain(caller, domain).await?;
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
        normalize_ports(&mut errors, &owning, &mut body.output_ports);
        body.output_ports.sort_by_key(|p| p.major_version);
        body.input_ports = check_inputs(&mut errors, &body.input_ports);
        finish(errors)?;
        let created = self
            .store
            .create_product(caller.name(), domain, &body)
            .await
            .map_err(|e| location_conflict(caller, e))?;
        Ok(present(true, &self.drifted_products().await?, created))
    }

    pub async fn get_product(&self, caller: &Caller, domain: &str, name: &str) -> Result<Product> {
        let (owning, product) = self.visible_product(caller, domain, name).await?;
        let owner = self.authz.owns_product(caller, &owning, &product);
        Ok(present(owner, &self.drifted_products().await?, product))
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
    ) -> Result<Page<Product>> {
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
        let mut listed = page(rows, &request, |p| format!("{}.{}", p.domain, p.name));
        let owned: HashSet<String> = if caller.is_admin() {
            HashSet::new()
        } else {
            self.store.owned_domains(caller.name()).await?.into_iter().collect()
        };
        let drifted = self.drifted_products().await?;
        listed.items = listed
            .items
            .into_iter()
            .map(|p| {
                let owner = caller.is_admin() || owned.contains(&p.domain) || caller.teams.contains(&p.owner_team);
                present(owner, &drifted, p)
            })
            .collect();
        Ok(listed)
    }

    pub async fn update_product(
        &self,
        caller: &Caller,
        domain: &str,
        name: &str,
        if_match: Option<i64>,
        mut body: ProductUpdate,
    ) -> Result<Product> {
        let (owning, current) = self.owned_product_in(caller, domain, name).await?;
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
            normalize_ports(&mut errors, &owning, ports);
            ports.sort_by_key(|p| p.major_version);
        }
        if let Some(inputs) = &body.input_ports {
            body.input_ports = Some(check_inputs(&mut errors, inputs));
        }
        finish(errors)?;
        let updated = self
            .store
            .update_product(caller.name(), domain, name, if_match, &body)
            .await
            .map_err(|e| location_conflict(caller, e))?;
        Ok(present(true, &self.drifted_products().await?, updated))
    }

    pub async fn delete_product(&self, caller: &Caller, domain: &str, name: &str, if_match: Option<i64>) -> Result<()> {
        self.owned_product(caller, domain, name).await?;
        Ok(self.store.delete_product(caller.name(), domain, name, if_match).await?)
    }

    /// Lineage around one product (`focus`), or of the whole mesh the caller sees.
    /// Products the caller may not see are left out, with their edges.
    pub async fn lineage(&self, caller: &Caller, focus: Option<(&str, &str)>) -> Result<Lineage> {
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
}
