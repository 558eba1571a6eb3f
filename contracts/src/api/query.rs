//! The gateway's SQL-over-HTTP wire types (`POST /api/v1/query`), shared by the
//! gateway that answers and the SDK that asks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Problem;

/// The HTTP (and gRPC) header declaring a query's purpose.
pub const PURPOSE_HEADER: &str = "tessera-purpose";
/// The response header naming a query (as in its audit record).
pub const QUERY_ID_HEADER: &str = "tessera-query-id";
/// The response header (and Flight SQL metadata) saying what a policy did to
/// the query, once per notice, e.g. `row filter customer_regions applied to
/// customers.customer`.
pub const NOTICE_HEADER: &str = "tessera-notice";

/// A query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One SQL query (SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES); tables are
    /// `<domain>.<product>`, older majors `<domain>.<product>__v<N>`, and a past
    /// Delta version `<domain>."<product>@v<N>"`.
    #[schema(
        example = "SELECT n_name, count(*) AS customers FROM customers.customer JOIN customers.nation ON c_nationkey = n_nationkey GROUP BY n_name"
    )]
    pub sql: String,
}

/// One result column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Column {
    pub name: String,
    /// The Arrow data type.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// The JSON form of a result (`Accept: application/json`), streamed row by row.
/// If the query fails after rows were sent, `error` replaces `row_count`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueryResult {
    pub query_id: String,
    /// What the policies did to the query (row filters and masks applied),
    /// without revealing hidden data; also sent as `Tessera-Notice` headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    pub columns: Vec<Column>,
    /// One object per row, keyed by column name.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub row_count: Option<u64>,
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<Problem>,
}
