//! A query client over Arrow Flight SQL: SQL in, Arrow record batches out,
//! streamed from every endpoint of the answer.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::transport::{Channel, Endpoint};

/// Why a Flight SQL query failed: `status` carries the gateway's gRPC code
/// (e.g. `NotFound` for a table you may not query, `InvalidArgument` for bad SQL).
#[derive(Debug, thiserror::Error)]
pub enum FlightError {
    #[error("cannot connect to {uri}: {message}")]
    Connect { uri: String, message: String },
    #[error(transparent)]
    Flight(#[from] arrow_flight::error::FlightError),
    #[error("the answer names no ticket to fetch")]
    NoTicket,
    #[error("the answer's schema cannot be read: {0}")]
    Schema(#[from] arrow::error::ArrowError),
}

impl FlightError {
    /// The gRPC status code of a failed call, when the server gave one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Flight(arrow_flight::error::FlightError::Tonic(status)) => Some(status.code()),
            _ => None,
        }
    }
}

/// One connection to a gateway's Flight SQL endpoint, as one principal.
#[derive(Debug, Clone)]
pub struct FlightClient {
    inner: FlightSqlServiceClient<Channel>,
}

impl FlightClient {
    /// `uri` is `grpc://host:port` (as `tessera serve` prints it) or `http://host:port`;
    /// `grpc+tls://` and `https://` use TLS.
    pub async fn connect(uri: &str, api_key: &str) -> Result<Self, FlightError> {
        Self::connect_trusting(uri, api_key, None).await
    }

    /// As [`FlightClient::connect`]; a `grpc+tls://` URI is verified against
    /// the system's CAs and those of `ca_pem` (PEM), such as `tessera demo
    /// --tls`'s `ca.pem`.
    pub async fn connect_trusting(uri: &str, api_key: &str, ca_pem: Option<&[u8]>) -> Result<Self, FlightError> {
        let failed = |message: String| FlightError::Connect {
            uri: uri.to_string(),
            message,
        };
        let http = if let Some(rest) = uri.strip_prefix("grpc+tls://") {
            format!("https://{rest}")
        } else if let Some(rest) = uri.strip_prefix("grpc://").or_else(|| uri.strip_prefix("grpc+tcp://")) {
            format!("http://{rest}")
        } else {
            uri.to_string()
        };
        let mut endpoint = Endpoint::from_shared(http).map_err(|e| failed(e.to_string()))?;
        if uri.starts_with("grpc+tls://") {
            let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = ca_pem {
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| failed(e.to_string()))?;
        }
        let channel = endpoint.connect().await.map_err(|e| failed(e.to_string()))?;
        let mut inner = FlightSqlServiceClient::new(channel);
        inner.set_token(api_key.to_string());
        Ok(Self { inner })
    }

    /// Declares the purpose of every following query (the `tessera-purpose` header).
    #[must_use]
    pub fn with_purpose(mut self, purpose: &str) -> Self {
        self.inner.set_header("tessera-purpose", purpose);
        self
    }

    /// Runs `sql` and collects the whole answer.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, FlightError> {
        self.query_stream(sql).await?.try_collect().await
    }

    /// Runs `sql` and streams the answer batch by batch, endpoint after endpoint.
    pub async fn query_stream(
        &self,
        sql: &str,
    ) -> Result<impl Stream<Item = Result<RecordBatch, FlightError>> + use<>, FlightError> {
        let mut client = self.inner.clone();
        let info = client.execute(sql.to_string(), None).await?;
        let mut tickets = Vec::with_capacity(info.endpoint.len());
        for endpoint in info.endpoint {
            tickets.push(endpoint.ticket.ok_or(FlightError::NoTicket)?);
        }
        let streams = futures::stream::iter(tickets).then(move |ticket| {
            let mut client = client.clone();
            async move { client.do_get(ticket).await }
        });
        Ok(streams
            .map_err(FlightError::from)
            .and_then(|stream| async move { Ok(stream.map_err(FlightError::from)) })
            .try_flatten())
    }

    /// The schema of `sql`'s answer, without running it.
    pub async fn schema(&self, sql: &str) -> Result<SchemaRef, FlightError> {
        let mut client = self.inner.clone();
        let info = client.execute(sql.to_string(), None).await?;
        Ok(std::sync::Arc::new(info.try_decode_schema()?))
    }
}
