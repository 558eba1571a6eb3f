//! SQL over the gateway's HTTP endpoint, as JSON rows or Arrow record batches.

use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use reqwest::header::ACCEPT;
use reqwest::{RequestBuilder, StatusCode};
use tessera_contracts::api::{PURPOSE_HEADER, QUERY_ID_HEADER, QueryRequest, QueryResult};

use crate::{ARROW_STREAM, ArrowResult, Client, Error, Result, check, header, json, method, ops};

impl Client {
    /// A query request to the gateway, declaring `purpose` if given.
    fn query_request(&self, sql: &str, purpose: Option<&str>, accept: &'static str) -> RequestBuilder {
        let mut request = self
            .http
            .request(method(&ops::QUERY), ops::QUERY.url(&self.gateway, &[]))
            .header(ACCEPT, accept)
            .json(&QueryRequest { sql: sql.to_string() });
        if let Some(purpose) = purpose {
            request = request.header(PURPOSE_HEADER, purpose);
        }
        request
    }

    /// Runs a SQL query on the gateway, as JSON rows; a failure after the first rows is an error too.
    pub async fn query(&self, sql: &str, purpose: Option<&str>) -> Result<QueryResult> {
        let result: QueryResult = json(self.query_request(sql, purpose, "application/json")).await?;
        match result.error {
            Some(problem) => Err(Error::Api {
                status: StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                problem: Box::new(problem),
            }),
            None => Ok(result),
        }
    }

    /// Runs a SQL query on the gateway, as Arrow record batches (an Arrow IPC stream).
    pub async fn query_arrow(&self, sql: &str, purpose: Option<&str>) -> Result<ArrowResult> {
        let response = check(self.query_request(sql, purpose, ARROW_STREAM).send().await?).await?;
        let query_id = header(&response, QUERY_ID_HEADER);
        let body = response.bytes().await?;
        let reader = StreamReader::try_new(std::io::Cursor::new(body), None)?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, ArrowError>>()?;
        Ok(ArrowResult {
            query_id,
            schema,
            batches,
        })
    }
}
