//! Why a use case failed, in the catalog's own terms (the API layer maps each
//! case to its HTTP status and problem type).

use tessera_contracts::api::{FieldError, Mismatch, Violation};

use crate::store::StoreError;

/// Where a contract met a table that does not match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Registering a contract version: the request is refused as invalid.
    Submission,
    /// Publishing the product: the product's state refuses it.
    Publication,
}

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be read at all (a cursor this API did not issue, a
    /// document that is not text, YAML or JSON).
    #[error("{0}")]
    Malformed(String),
    /// The request is read but breaks rules, field by field.
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// A document in a format the catalog does not take.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A credential that does not hold (a refused token), with why.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A lifecycle transition that the rules refuse.
    #[error("{0}")]
    IllegalTransition(String),
    /// The change was based on a revision that is no longer the current one.
    #[error("the resource has changed: its current revision is {current}")]
    PreconditionFailed { current: i64 },
    /// A contract version that breaks compatibility without a new major version.
    #[error("{detail}")]
    Breaking { detail: String, violations: Vec<Violation> },
    /// A contract that its Delta table does not match.
    #[error("{detail}")]
    TableMismatch {
        stage: Stage,
        detail: String,
        mismatches: Vec<Mismatch>,
    },
    /// The catalog's database is out of reach; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(msg) => Self::Conflict(msg),
            overlap @ StoreError::LocationOverlap { .. } => Self::Conflict(overlap.to_string()),
            StoreError::PreconditionFailed { current } => Self::PreconditionFailed { current },
            StoreError::IllegalTransition(msg) => Self::IllegalTransition(msg),
            StoreError::Invalid(msg) => Self::field("", msg),
            StoreError::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                Self::Unavailable("the catalog database is unavailable; retry shortly".into())
            }
            other @ StoreError::Backend(_) => Self::Internal(anyhow::Error::new(other)),
        }
    }
}
