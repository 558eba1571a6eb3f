//! Data products, their tags and their lineage edges on both backends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, QueryBuilder, Sqlite};
use tessera_contracts::api::{
    Compatibility, Health, OutputPort, Product, ProductCreate, ProductStatus, ProductUpdate, Visibility,
};
use tessera_contracts::policy::Target;

use super::{Entry, PgStore, SqliteStore, Tx, check_revision, constraint, corrupt};
use crate::storage;
use crate::store::{Edge, ProductQuery, ProductScope, ProductStore, Result, StoreError, find_cycle, like_pattern};

#[derive(FromRow)]
pub(super) struct ProductRow {
    domain: String,
    name: String,
    title: String,
    description: String,
    owner_team: String,
    visibility: String,
    status: String,
    sunset_date: Option<NaiveDate>,
    tags: Json<Vec<String>>,
    output_ports: Json<Vec<OutputPort>>,
    input_ports: Json<Vec<String>>,
    latest_contract_version: Option<String>,
    compatibility: String,
    health: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl ProductRow {
    pub(super) fn into_api(self) -> Result<Product> {
        Ok(Product {
            visibility: Visibility::parse(&self.visibility).ok_or_else(|| corrupt("visibility", &self.visibility))?,
            status: ProductStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?,
            domain: self.domain,
            name: self.name,
            title: self.title,
            description: self.description,
            owner_team: self.owner_team,
            sunset_date: self.sunset_date,
            tags: self.tags.0,
            output_ports: self.output_ports.0,
            input_ports: self.input_ports.0,
            latest_contract_version: self.latest_contract_version,
            compatibility: Compatibility::parse(&self.compatibility)
                .ok_or_else(|| corrupt("compatibility", &self.compatibility))?,
            health: Health::parse(&self.health).ok_or_else(|| corrupt("health", &self.health))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

fn split_product_cursor(after: &str) -> (String, String) {
    match after.split_once('.') {
        Some((d, p)) => (d.to_string(), p.to_string()),
        None => (after.to_string(), String::new()),
    }
}

fn product_path(domain: &str, name: &str) -> String {
    format!("/domains/{domain}/products/{name}")
}

/// The status and sunset date an update leads to, if the lifecycle allows it.
fn lifecycle(before: &Product, patch: &ProductUpdate) -> Result<(ProductStatus, Option<NaiveDate>)> {
    let (domain, name) = (&before.domain, &before.name);
    let status = patch.status.unwrap_or(before.status);
    before
        .status
        .transition_to(status)
        .map_err(StoreError::IllegalTransition)?;
    let mut sunset_date = patch.sunset_date.or(before.sunset_date);
    match status {
        ProductStatus::Draft | ProductStatus::Published | ProductStatus::Retired if patch.sunset_date.is_some() => {
            return Err(StoreError::Invalid(
                "sunset_date applies only to deprecated products".into(),
            ));
        }
        ProductStatus::Published if before.status != ProductStatus::Published => {
            if before.latest_contract_version.is_none() {
                return Err(StoreError::IllegalTransition(format!(
                    "{domain}.{name} cannot be published without a contract: register one first"
                )));
            }
            sunset_date = None;
        }
        ProductStatus::Deprecated if sunset_date.is_none() => {
            return Err(StoreError::IllegalTransition(format!(
                "deprecating {domain}.{name} needs a sunset_date"
            )));
        }
        _ => {}
    }
    Ok((status, sunset_date))
}

macro_rules! product_store {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(super) async fn product_in<'e, E>(exec: E, domain: &str, name: &str) -> Result<Option<Product>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_as::<_, ProductRow>("SELECT * FROM products WHERE domain = $1 AND name = $2")
                    .bind(domain)
                    .bind(name)
                    .fetch_optional(exec)
                    .await?
                    .map(ProductRow::into_api)
                    .transpose()
            }

            /// The product, which must exist.
            pub(super) async fn product(tx: &mut Tx<$db>, domain: &str, name: &str) -> Result<Product> {
                Self::product_in(&mut **tx, domain, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{name}")))
            }

            /// Checks and writes a product's input ports (the lineage index).
            async fn write_inputs(tx: &mut Tx<$db>, domain: &str, name: &str, inputs: &[String]) -> Result<()> {
                let mut parsed = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let (d, p) = tessera_contracts::names::parse_product_ref(input).map_err(StoreError::Invalid)?;
                    if (d, p) == (domain, name) {
                        return Err(StoreError::Invalid(format!("{input} cannot be an input port of itself")));
                    }
                    if Self::product_in(&mut **tx, d, p).await?.is_none() {
                        return Err(StoreError::Invalid(format!("input port {input}: no such product")));
                    }
                    parsed.push((d.to_string(), p.to_string()));
                }
                let edges = Self::edges_in(&mut **tx).await?;
                if let Some(cycle) = find_cycle(&edges, &(domain.to_string(), name.to_string()), &parsed) {
                    return Err(StoreError::Invalid(format!("input ports would form a cycle: {}", cycle.join(" <- "))));
                }
                sqlx::query("DELETE FROM product_inputs WHERE domain = $1 AND product = $2")
                    .bind(domain)
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                for (d, p) in parsed {
                    sqlx::query("INSERT INTO product_inputs (domain, product, up_domain, up_product) VALUES ($1, $2, $3, $4)")
                        .bind(domain)
                        .bind(name)
                        .bind(d)
                        .bind(p)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Refuses output ports whose location equals, or nests with, a
            /// location of another product (of any major version). Runs in
            /// the write transaction, under the writer lock: two registrations
            /// of one location cannot both pass.
            async fn check_locations(tx: &mut Tx<$db>, domain: &str, name: &str, ports: &[OutputPort]) -> Result<()> {
                if ports.iter().all(|p| p.location.is_none()) {
                    return Ok(());
                }
                let others: Vec<(String, String, Json<Vec<OutputPort>>)> = sqlx::query_as(
                    "SELECT domain, name, output_ports FROM products WHERE NOT (domain = $1 AND name = $2) \
                     ORDER BY domain, name",
                )
                .bind(domain)
                .bind(name)
                .fetch_all(&mut **tx)
                .await?;
                for port in ports {
                    let Some(location) = port.location.as_deref() else { continue };
                    for (d, p, theirs) in &others {
                        if theirs.0.iter().filter_map(|t| t.location.as_deref()).any(|t| storage::overlaps(location, t)) {
                            return Err(StoreError::LocationOverlap {
                                port: format!("output_ports[major_version={}].location", port.major_version),
                                owner: format!("{d}.{p}"),
                            });
                        }
                    }
                }
                Ok(())
            }

            async fn write_tags(tx: &mut Tx<$db>, domain: &str, name: &str, tags: &[String]) -> Result<()> {
                sqlx::query("DELETE FROM product_tags WHERE domain = $1 AND product = $2")
                    .bind(domain)
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                for tag in tags {
                    sqlx::query("INSERT INTO product_tags (domain, product, tag) VALUES ($1, $2, $3)")
                        .bind(domain)
                        .bind(name)
                        .bind(tag)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            async fn edges_in<'e, E>(exec: E) -> Result<Vec<Edge>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT up_domain, up_product, domain, product FROM product_inputs \
                     ORDER BY domain, product, up_domain, up_product",
                )
                .fetch_all(exec)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(up_domain, up_product, domain, product)| Edge { up_domain, up_product, domain, product })
                    .collect())
            }
        }

        #[async_trait]
        impl ProductStore for $store {
            async fn create_product(&self, actor: &str, domain: &str, new: &ProductCreate) -> Result<Product> {
                self.write(actor, move |mut tx| async move {
                    let owning_domain = Self::domain(&mut tx, domain).await?;
                    let owner_team = new.owner_team.clone().unwrap_or(owning_domain.owner_team);
                    Self::require_team(&mut tx, &owner_team).await?;
                    sqlx::query(
                        "INSERT INTO products (domain, name, title, description, owner_team, visibility, status, sunset_date, \
                         tags, output_ports, input_ports, latest_contract_version, compatibility, created_at, updated_at, revision) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'draft', NULL, $7, $8, $9, NULL, $11, $10, $10, 1)",
                    )
                    .bind(domain)
                    .bind(&new.name)
                    .bind(new.title.as_deref().unwrap_or(&new.name))
                    .bind(new.description.as_deref().unwrap_or(""))
                    .bind(&owner_team)
                    .bind(new.visibility.as_str())
                    .bind(Json(&new.tags))
                    .bind(Json(&new.output_ports))
                    .bind(Json(&new.input_ports))
                    .bind(Utc::now())
                    .bind(new.compatibility.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("product {domain}.{}", new.name)))?;
                    Self::check_locations(&mut tx, domain, &new.name, &new.output_ports).await?;
                    Self::write_tags(&mut tx, domain, &new.name, &new.tags).await?;
                    Self::write_inputs(&mut tx, domain, &new.name, &new.input_ports).await?;
                    let created = Self::product(&mut tx, domain, &new.name).await?;
                    let entry = Entry::new("create", "product", product_path(domain, &new.name)).after(&created);
                    Ok((tx, entry.of(created)))
                })
                .await
            }

            async fn get_product(&self, domain: &str, name: &str) -> Result<Option<Product>> {
                Self::product_in(&self.pool, domain, name).await
            }

            async fn list_products(&self, q: &ProductQuery) -> Result<Vec<Product>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT p.* FROM products p WHERE 1 = 1");
                if let ProductScope::VisibleTo { principal: who, granted } = &q.scope {
                    qb.push(" AND (p.visibility = 'discoverable' OR p.owner_team IN (SELECT team FROM team_members WHERE principal = ")
                        .push_bind(who.clone())
                        .push(") OR p.domain IN (SELECT d.name FROM domains d JOIN team_members m ON m.team = d.owner_team WHERE m.principal = ")
                        .push_bind(who.clone())
                        .push(")");
                    for target in granted {
                        match target {
                            Target::Product { domain, product } => {
                                qb.push(" OR (p.domain = ").push_bind(domain.clone()).push(" AND p.name = ").push_bind(product.clone()).push(")");
                            }
                            Target::Domain { domain } => {
                                qb.push(" OR p.domain = ").push_bind(domain.clone());
                            }
                            Target::Tag { tag } => {
                                qb.push(" OR EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND t.tag = ")
                                    .push_bind(tag.clone())
                                    .push(")");
                            }
                            Target::All => {
                                qb.push(" OR 1 = 1");
                            }
                        }
                    }
                    qb.push(")");
                }
                if let Some(domain) = &q.domain {
                    qb.push(" AND p.domain = ").push_bind(domain.clone());
                }
                if let Some(tag) = &q.tag {
                    qb.push(" AND EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND t.tag = ")
                        .push_bind(tag.clone())
                        .push(")");
                }
                if let Some(status) = q.status {
                    qb.push(" AND p.status = ").push_bind(status.as_str());
                }
                if let Some(team) = &q.owner_team {
                    qb.push(" AND p.owner_team = ").push_bind(team.clone());
                }
                if let Some(visibility) = q.visibility {
                    qb.push(" AND p.visibility = ").push_bind(visibility.as_str());
                }
                if let Some(text) = &q.text {
                    let pattern = like_pattern(text);
                    qb.push(" AND (LOWER(p.name) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR LOWER(p.title) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR LOWER(p.description) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND LOWER(t.tag) LIKE ")
                        .push_bind(pattern)
                        .push(" ESCAPE '\\'))");
                }
                if let Some(after) = &q.page.after {
                    let (d, p) = split_product_cursor(after);
                    qb.push(" AND (p.domain > ").push_bind(d.clone());
                    qb.push(" OR (p.domain = ").push_bind(d).push(" AND p.name > ").push_bind(p).push("))");
                }
                qb.push(" ORDER BY p.domain, p.name LIMIT ").push_bind(q.page.limit + 1);
                qb.build_query_as::<ProductRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(ProductRow::into_api)
                    .collect()
            }

            async fn update_product(
                &self,
                actor: &str,
                domain: &str,
                name: &str,
                if_match: Option<i64>,
                patch: &ProductUpdate,
            ) -> Result<Product> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::product(&mut tx, domain, name).await?;
                    check_revision(if_match, before.revision)?;
                    let (status, sunset_date) = lifecycle(&before, patch)?;
                    let owner_team = patch.owner_team.as_ref().unwrap_or(&before.owner_team);
                    if patch.owner_team.is_some() {
                        Self::require_team(&mut tx, owner_team).await?;
                    }
                    let tags = patch.tags.as_ref().unwrap_or(&before.tags);
                    let output_ports = patch.output_ports.as_ref().unwrap_or(&before.output_ports);
                    let input_ports = patch.input_ports.as_ref().unwrap_or(&before.input_ports);
                    sqlx::query(
                        "UPDATE products SET title = $3, description = $4, owner_team = $5, visibility = $6, status = $7, \
                         sunset_date = $8, tags = $9, output_ports = $10, input_ports = $11, updated_at = $12, \
                         compatibility = $13, revision = revision + 1 WHERE domain = $1 AND name = $2",
                    )
                    .bind(domain)
                    .bind(name)
                    .bind(patch.title.as_ref().unwrap_or(&before.title))
                    .bind(patch.description.as_ref().unwrap_or(&before.description))
                    .bind(owner_team)
                    .bind(patch.visibility.unwrap_or(before.visibility).as_str())
                    .bind(status.as_str())
                    .bind(sunset_date)
                    .bind(Json(tags))
                    .bind(Json(output_ports))
                    .bind(Json(input_ports))
                    .bind(Utc::now())
                    .bind(patch.compatibility.unwrap_or(before.compatibility).as_str())
                    .execute(&mut *tx)
                    .await?;
                    if patch.output_ports.is_some() {
                        Self::check_locations(&mut tx, domain, name, output_ports).await?;
                    }
                    if patch.tags.is_some() {
                        Self::write_tags(&mut tx, domain, name, tags).await?;
                    }
                    if patch.input_ports.is_some() {
                        Self::write_inputs(&mut tx, domain, name, input_ports).await?;
                    }
                    let after = Self::product(&mut tx, domain, name).await?;
                    let action = if before.status == after.status { "update" } else { after.status.as_str() };
                    let entry = Entry::new(action, "product", product_path(domain, name)).before(&before).after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn delete_product(&self, actor: &str, domain: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::product(&mut tx, domain, name).await?;
                    check_revision(if_match, before.revision)?;
                    if !matches!(before.status, ProductStatus::Draft | ProductStatus::Retired) {
                        return Err(StoreError::IllegalTransition(format!(
                            "{domain}.{name} is {}: only draft or retired products can be deleted (deprecate and retire it first)",
                            before.status.as_str()
                        )));
                    }
                    let readers: Vec<(String, String)> = sqlx::query_as(
                        "SELECT domain, product FROM product_inputs WHERE up_domain = $1 AND up_product = $2 ORDER BY domain, product",
                    )
                    .bind(domain)
                    .bind(name)
                    .fetch_all(&mut *tx)
                    .await?;
                    if !readers.is_empty() {
                        let names: Vec<String> = readers.iter().map(|(d, p)| format!("{d}.{p}")).collect();
                        return Err(StoreError::Conflict(format!(
                            "{domain}.{name} is an input port of {}",
                            names.join(", ")
                        )));
                    }
                    sqlx::query("DELETE FROM products WHERE domain = $1 AND name = $2")
                        .bind(domain)
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| constraint(e, &format!("product {domain}.{name}")))?;
                    let entry = Entry::new("delete", "product", product_path(domain, name)).before(&before);
                    Ok((tx, entry.of(())))
                })
                .await
            }

            async fn lineage_edges(&self) -> Result<Vec<Edge>> {
                Self::edges_in(&self.pool).await
            }
        }
    };
}

product_store!(SqliteStore, Sqlite);
product_store!(PgStore, Postgres);
