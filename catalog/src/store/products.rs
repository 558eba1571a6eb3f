//! Storing data products and their lineage (input ports), and the lineage rule
//! every backend applies: input ports never form a cycle.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use tessera_contracts::api::{Product, ProductCreate, ProductStatus, ProductUpdate, Visibility};

use super::{PageRequest, Result};

/// Which products a listing may return; produced by [`crate::authz::Authz`].
#[derive(Debug, Clone)]
pub enum ProductScope {
    All,
    /// Discoverable products, the restricted ones the principal owns, and those its grants cover.
    VisibleTo {
        principal: String,
        granted: Vec<tessera_contracts::policy::Target>,
    },
}

/// Filters of the product listing.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    pub scope: ProductScope,
    pub domain: Option<String>,
    pub tag: Option<String>,
    pub status: Option<ProductStatus>,
    pub owner_team: Option<String>,
    pub visibility: Option<Visibility>,
    /// Case-insensitive text search over name, title, description and tags.
    pub text: Option<String>,
    pub page: PageRequest,
}

impl ProductQuery {
    /// Every product in `scope`, one page of them, no filter.
    pub fn unfiltered(scope: ProductScope, page: PageRequest) -> Self {
        Self {
            scope,
            domain: None,
            tag: None,
            status: None,
            owner_team: None,
            visibility: None,
            text: None,
            page,
        }
    }
}

/// One lineage edge: `(up_domain, up_product) -> (domain, product)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub up_domain: String,
    pub up_product: String,
    pub domain: String,
    pub product: String,
}

/// Data products, their lifecycle and the lineage their input ports draw.
#[async_trait]
pub trait ProductStore: Send + Sync + 'static {
    async fn create_product(&self, actor: &str, domain: &str, new: &ProductCreate) -> Result<Product>;
    async fn get_product(&self, domain: &str, name: &str) -> Result<Option<Product>>;
    async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>>;
    async fn update_product(
        &self,
        actor: &str,
        domain: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &ProductUpdate,
    ) -> Result<Product>;
    async fn delete_product(&self, actor: &str, domain: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    async fn lineage_edges(&self) -> Result<Vec<Edge>>;
}

/// Returns a cycle, as a path of `domain.product`, if `node` reading `inputs` would
/// close one in the lineage graph `edges` (whose edges into `node` `inputs` replaces).
pub fn find_cycle(edges: &[Edge], node: &(String, String), inputs: &[(String, String)]) -> Option<Vec<String>> {
    let mut upstream: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for e in edges {
        if (&e.domain, &e.product) == (&node.0, &node.1) {
            continue; // replaced by `inputs`
        }
        upstream
            .entry((e.domain.clone(), e.product.clone()))
            .or_default()
            .push((e.up_domain.clone(), e.up_product.clone()));
    }
    upstream.insert(node.clone(), inputs.to_vec());
    // Depth-first search from `node` along upstream edges, looking for `node`.
    let mut stack = vec![(node.clone(), vec![format!("{}.{}", node.0, node.1)])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in upstream.get(&at).map(Vec::as_slice).unwrap_or_default() {
            let mut path = path.clone();
            path.push(format!("{}.{}", next.0, next.1));
            if next == node {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), path));
            }
        }
    }
    None
}

/// The `LIKE ... ESCAPE '\'` pattern that finds `text`, lower-cased, literally
/// (its `%` and `_` are not wildcards).
pub fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
