//! Why a query failed, once, for every protocol: each variant knows its
//! SQLSTATE (PostgreSQL wire), HTTP status and problem type, and gRPC code.

use datafusion::error::DataFusionError;

/// A query's failure, as the client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("authentication failed: the API key is unknown, revoked or expired")]
    Unauthenticated,
    /// An OpenID Connect token refused, with why.
    #[error("authentication failed: {0}")]
    TokenRefused(String),
    /// The client's address failed to authenticate too often.
    #[error("{0}")]
    Throttled(tessera_http::Throttled),
    #[error("the gateway has no policy bundle yet: it cannot serve queries until it reaches the catalog")]
    NotReady,
    /// Fail closed: the catalog has not confirmed the bundle for longer than `max_staleness`.
    #[error(
        "the gateway's policy bundle (version {version}) was last confirmed by the catalog {age_secs} s ago, \
         longer than its max_staleness of {max_secs} s: it refuses queries until the catalog is back"
    )]
    Stale { version: i64, age_secs: u64, max_secs: u64 },
    #[error("the SQL text is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A statement over the bounds of its shape (see `Limits`): planning it
    /// could take the gateway down.
    #[error("the statement is too complex: {0}")]
    TooComplex(String),
    /// DDL, DML, COPY, SET and the like: the gateway only answers queries.
    #[error("{0}")]
    NotAllowed(String),
    /// A table, schema or column that does not exist in the caller's session.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unsupported(String),
    /// A product whose table (at the version asked for) does not match its contract.
    #[error("{0}")]
    NotServed(String),
    /// The query is well-formed but cannot be planned (types, ambiguity, ...).
    #[error("{0}")]
    Plan(String),
    /// Evaluating the query failed on the data (division by zero, a bad cast, ...).
    #[error("{message}")]
    Data { sqlstate: &'static str, message: String },
    #[error("too many queries: {running} are running and {queued} waiting; try again shortly")]
    Busy { running: usize, queued: usize },
    #[error("the query ran longer than its limit of {secs} s and was cancelled")]
    Timeout { secs: f64 },
    #[error("the result exceeds the limit of {max} rows")]
    TooManyRows { max: u64 },
    #[error("the result exceeds the limit of {max} bytes")]
    TooManyBytes { max: u64 },
    #[error("the query needs more memory than its limit allows: {0}")]
    Memory(String),
    #[error("storage: {0}")]
    Storage(String),
    /// The query's audit record cannot be kept (the gateway's audit spool is
    /// full, or its disk failed): queries are refused rather than unaudited.
    #[error("the gateway cannot record queries right now: {0}")]
    AuditUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// The PostgreSQL error code.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "28P01",
            Self::TokenRefused(_) | Self::Throttled(_) => "28000",
            Self::NotReady | Self::Stale { .. } => "57P03",
            Self::AuditUnavailable(_) => "53100",
            Self::TooLong { .. } => "54000",
            Self::Syntax(_) => "42601",
            Self::TooComplex(_) => "54001",
            Self::NotAllowed(_) => "42501",
            Self::NotFound(m) if m.contains("function") => "42883",
            Self::NotFound(m) if m.contains("column") || m.contains("field") => "42703",
            Self::NotFound(m) if m.contains("schema") => "3F000",
            Self::NotFound(_) => "42P01",
            Self::Unsupported(_) => "0A000",
            Self::NotServed(_) => "55000",
            Self::Plan(_) => "42804",
            Self::Data { sqlstate, .. } => sqlstate,
            Self::Busy { .. } => "53300",
            Self::Timeout { .. } => "57014",
            Self::TooManyRows { .. } | Self::TooManyBytes { .. } => "54000",
            Self::Memory(_) => "53200",
            Self::Storage(_) => "58030",
            Self::Internal(_) => "XX000",
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Unauthenticated | Self::TokenRefused(_) => 401,
            Self::Throttled(_) => 429,
            Self::NotAllowed(_) => 403,
            Self::NotFound(_) => 404,
            Self::NotServed(_) => 409,
            Self::TooLong { .. } => 413,
            Self::Syntax(_) | Self::TooComplex(_) | Self::Unsupported(_) | Self::Plan(_) | Self::Data { .. } => 400,
            Self::TooManyRows { .. } | Self::TooManyBytes { .. } | Self::Memory(_) => 422,
            Self::Busy { .. } => 429,
            Self::NotReady | Self::Stale { .. } | Self::AuditUnavailable(_) => 503,
            Self::Timeout { .. } => 504,
            Self::Storage(_) => 502,
            Self::Internal(_) => 500,
        }
    }

    /// The stable problem type's last segment (`urn:tessera:problem:<kind>`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::TokenRefused(_) => "unauthenticated",
            Self::Throttled(_) => "too-many-failed-attempts",
            Self::NotReady => "not-ready",
            Self::Stale { .. } => "bundle-stale",
            Self::AuditUnavailable(_) => "audit-unavailable",
            Self::TooLong { .. } => "sql-too-long",
            Self::Syntax(_) => "sql-syntax",
            Self::TooComplex(_) => "statement-too-complex",
            Self::NotAllowed(_) => "statement-not-allowed",
            Self::NotFound(_) => "not-found",
            Self::Unsupported(_) => "unsupported",
            Self::NotServed(_) => "not-served",
            Self::Plan(_) => "invalid-query",
            Self::Data { .. } => "data-error",
            Self::Busy { .. } => "busy",
            Self::Timeout { .. } => "query-timeout",
            Self::TooManyRows { .. } => "too-many-rows",
            Self::TooManyBytes { .. } => "too-many-bytes",
            Self::Memory(_) => "memory-limit",
            Self::Storage(_) => "storage",
            Self::Internal(_) => "internal",
        }
    }

    /// Classifies an engine error. Gateway errors travel through DataFusion as
    /// `External` and come back out unchanged.
    pub fn from_datafusion(error: &DataFusionError) -> Self {
        if let Some(own) = find_own(error) {
            return own;
        }
        let root = error.find_root();
        if let Some(own) = find_own(root) {
            return own;
        }
        let message = strip_prefixes(&root.to_string());
        if message.contains("max_temp_directory_size") {
            // Spilling beyond `query_spill_bytes` (an I/O error to DataFusion):
            // the query needs more than its memory and spill space.
            return Self::Memory(format!(
                "it would spill more than its limits.query_spill_bytes ({message})"
            ));
        }
        match root {
            DataFusionError::SQL(..) => Self::Syntax(message),
            DataFusionError::NotImplemented(_) => Self::Unsupported(message),
            DataFusionError::ResourcesExhausted(_) => Self::Memory(message),
            DataFusionError::SchemaError(..) => classify_plan(message),
            DataFusionError::Plan(_) => classify_plan(message),
            DataFusionError::ArrowError(e, _) => classify_arrow(e, message),
            DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => Self::Storage(message),
            DataFusionError::ParquetError(_) => classify_parquet(message),
            DataFusionError::Execution(_) | DataFusionError::External(_) => classify_execution(message),
            _ => Self::Internal(message),
        }
    }

    /// What the client is told: the error's own message, except for failures
    /// inside the platform (an internal error, storage that failed), whose
    /// cause may name internals: the client gets an error id, and the log line
    /// carrying the cause names the same id.
    pub fn disclose(&self) -> Disclosed {
        if !matches!(self, Self::Internal(_) | Self::Storage(_)) {
            return Disclosed {
                message: self.to_string(),
                error_id: None,
            };
        }
        let error_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(%error_id, error = %self, sqlstate = self.sqlstate(), "query failed inside the platform");
        Disclosed {
            message: format!("an internal error occurred; quote error id {error_id}"),
            error_id: Some(error_id),
        }
    }

    /// Wraps the error for travel through DataFusion (a stream's item, a provider's result).
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

/// An error as a client sees it (see [`QueryError::disclose`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosed {
    pub message: String,
    /// Set when the message hides the cause, which the log has under this id.
    pub error_id: Option<String>,
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        Self::from_datafusion(&e)
    }
}

fn find_own(error: &DataFusionError) -> Option<QueryError> {
    match error {
        DataFusionError::External(inner) => inner.downcast_ref::<QueryError>().cloned(),
        DataFusionError::Context(_, inner) => find_own(inner),
        DataFusionError::Shared(inner) => find_own(inner),
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            arrow::error::ArrowError::ExternalError(inner) => inner
                .downcast_ref::<DataFusionError>()
                .and_then(find_own)
                .or_else(|| inner.downcast_ref::<QueryError>().cloned()),
            _ => None,
        },
        _ => None,
    }
}

/// DataFusion prefixes messages with where they arose ("Error during planning: ",
/// "Arrow error: ", ...); clients want the message itself.
fn strip_prefixes(message: &str) -> String {
    let mut m = message.trim();
    loop {
        let before = m;
        for prefix in [
            "Error during planning: ",
            "Schema error: ",
            "Arrow error: ",
            "Execution error: ",
            "External error: ",
            "SQL error: ",
            "This feature is not implemented: ",
            "Resources exhausted: ",
            "Object Store error: ",
            "IO error: ",
            "Compute error: ",
            "Invalid argument error: ",
            "Cast error: ",
            "Parser error: ",
            "ParserError(\"",
        ] {
            if let Some(rest) = m.strip_prefix(prefix) {
                m = rest;
            }
        }
        if m == before {
            break;
        }
    }
    m.trim_end_matches("\")").to_string()
}

fn classify_plan(message: String) -> QueryError {
    let lower = message.to_lowercase();
    if (lower.starts_with("table '") && lower.contains("not found"))
        || lower.contains("no field named")
        || lower.contains("column") && lower.contains("not found")
        || lower.starts_with("schema '") && lower.contains("not found")
        || lower.contains("invalid function")
        || lower.starts_with("table function '") && lower.contains("not found")
    {
        QueryError::NotFound(message)
    } else {
        QueryError::Plan(message)
    }
}

fn classify_arrow(error: &arrow::error::ArrowError, message: String) -> QueryError {
    use arrow::error::ArrowError;
    let sqlstate = match error {
        ArrowError::DivideByZero => "22012",
        ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
        ArrowError::ArithmeticOverflow(_) => "22003",
        ArrowError::ComputeError(_) | ArrowError::InvalidArgumentError(_) => "22023",
        ArrowError::MemoryError(_) => return QueryError::Memory(message),
        _ => return QueryError::Internal(message),
    };
    QueryError::Data { sqlstate, message }
}

/// The Parquet reader evaluates pushed-down predicates itself and reports
/// their failures as its own: they are the query's data errors, not storage ones.
fn classify_parquet(message: String) -> QueryError {
    let lower = message.to_lowercase();
    if lower.contains("dividebyzero") || lower.contains("divide by zero") {
        QueryError::Data {
            sqlstate: "22012",
            message: "Divide by zero error".into(),
        }
    } else if lower.contains("error evaluating filter predicate") {
        classify_execution(message)
    } else {
        QueryError::Storage(message)
    }
}

fn classify_execution(message: String) -> QueryError {
    let lower = message.to_lowercase();
    let sqlstate = if lower.contains("divide by zero") || lower.contains("division by zero") {
        "22012"
    } else if lower.contains("cast") || lower.contains("parse") {
        "22P02"
    } else if lower.contains("overflow") {
        "22003"
    } else if lower.contains("regex") {
        "2201B"
    } else {
        "22000"
    };
    QueryError::Data { sqlstate, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_errors_survive_the_trip_through_datafusion() {
        let e = QueryError::TooManyRows { max: 5 }.into_datafusion();
        let wrapped = DataFusionError::Context("while streaming".into(), Box::new(e));
        assert_eq!(
            QueryError::from_datafusion(&wrapped),
            QueryError::TooManyRows { max: 5 }
        );
    }

    #[test]
    fn engine_errors_get_sqlstates() {
        let e = DataFusionError::ArrowError(Box::new(arrow::error::ArrowError::DivideByZero), None);
        assert_eq!(QueryError::from_datafusion(&e).sqlstate(), "22012");
        let e = DataFusionError::Plan("table 'tessera.sales.nope' not found".into());
        let q = QueryError::from_datafusion(&e);
        assert_eq!(
            (q.sqlstate(), q.to_string().as_str()),
            ("42P01", "table 'tessera.sales.nope' not found")
        );
        let e = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        assert_eq!(QueryError::from_datafusion(&e).sqlstate(), "53200");
    }
}
