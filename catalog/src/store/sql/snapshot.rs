//! The policy bundle's reads on both backends, in one read transaction: one
//! version of the catalog, however many writes go on meanwhile.
//!
//! SQLite (WAL) fixes a read transaction's snapshot at its first read;
//! PostgreSQL is asked for `REPEATABLE READ`, whose snapshot is the first
//! statement's. Either way the version read first labels exactly what the
//! later reads see.

use super::contracts::ContractRow;
use super::domains::DomainRow;
use super::governance::PolicyRow;
use super::principals::{KeyRow, PrincipalRow};
use super::products::ProductRow;
use super::{PgStore, SqliteStore, VERSION_SQL, parse_issuers, parse_mask_key};
use crate::store::{Result, Snapshot};

macro_rules! snapshot {
    ($store:ty, $isolation:expr) => {
        impl $store {
            pub(super) async fn read_snapshot(&self) -> Result<Snapshot> {
                let mut tx = self.pool.begin().await?;
                let isolation: Option<&str> = $isolation;
                if let Some(isolation) = isolation {
                    sqlx::query(isolation).execute(&mut *tx).await?;
                }
                let version: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&mut *tx).await?;
                let mask_key: Option<String> = sqlx::query_scalar("SELECT mask_key FROM catalog_state WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let domains = sqlx::query_as::<_, DomainRow>("SELECT * FROM domains ORDER BY name")
                    .fetch_all(&mut *tx)
                    .await?;
                let products = sqlx::query_as::<_, ProductRow>("SELECT * FROM products ORDER BY domain, name")
                    .fetch_all(&mut *tx)
                    .await?;
                let contracts =
                    sqlx::query_as::<_, ContractRow>("SELECT * FROM contract_versions ORDER BY domain, product")
                        .fetch_all(&mut *tx)
                        .await?;
                let memberships: Vec<(String, String)> =
                    sqlx::query_as("SELECT team, principal FROM team_members ORDER BY team, principal")
                        .fetch_all(&mut *tx)
                        .await?;
                let principals = sqlx::query_as::<_, PrincipalRow>("SELECT * FROM principals ORDER BY name")
                    .fetch_all(&mut *tx)
                    .await?;
                let keys = sqlx::query_as::<_, KeyRow>("SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?;
                let policies = sqlx::query_as::<_, PolicyRow>("SELECT * FROM policies ORDER BY kind, name")
                    .fetch_all(&mut *tx)
                    .await?;
                let issuers: Vec<String> = sqlx::query_scalar("SELECT body FROM issuers ORDER BY issuer")
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollback().await?;
                Ok(Snapshot {
                    version,
                    mask_key: parse_mask_key(mask_key)?,
                    domains: domains.into_iter().map(Into::into).collect(),
                    products: products
                        .into_iter()
                        .map(ProductRow::into_api)
                        .collect::<Result<_>>()?,
                    contracts: contracts.into_iter().map(Into::into).collect(),
                    memberships,
                    principals: principals
                        .into_iter()
                        .map(PrincipalRow::into_api)
                        .collect::<Result<_>>()?,
                    keys: keys.into_iter().map(KeyRow::into_stored).collect(),
                    policies: policies
                        .into_iter()
                        .map(PolicyRow::into_stored)
                        .collect::<Result<_>>()?,
                    issuers: parse_issuers(&issuers)?,
                })
            }
        }
    };
}

snapshot!(SqliteStore, None);
snapshot!(
    PgStore,
    Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
);
