//! The lifecycle of a data product: `draft -> published -> deprecated -> retired`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a data product stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Registered, possibly without data; not queryable by consumers yet.
    Draft,
    /// Live: its contract holds and consumers may depend on it.
    Published,
    /// Still served until its sunset date; consumers should migrate away.
    Deprecated,
    /// No longer served; kept for lineage and history.
    Retired,
}

impl ProductStatus {
    /// The stored and serialized form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Deprecated => "deprecated",
            Self::Retired => "retired",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "published" => Self::Published,
            "deprecated" => Self::Deprecated,
            "retired" => Self::Retired,
            _ => return None,
        })
    }

    /// The states this one may move to. A deprecated product may be published again
    /// (the deprecation was withdrawn); nothing leaves `retired`.
    pub fn successors(self) -> &'static [ProductStatus] {
        match self {
            Self::Draft => &[Self::Published],
            Self::Published => &[Self::Deprecated],
            Self::Deprecated => &[Self::Published, Self::Retired],
            Self::Retired => &[],
        }
    }

    /// Checks a transition, saying what is allowed when it is not.
    pub fn transition_to(self, to: ProductStatus) -> Result<(), String> {
        if self == to || self.successors().contains(&to) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.successors().iter().map(|s| s.as_str()).collect();
        Err(if allowed.is_empty() {
            format!("a {} product cannot change status", self.as_str())
        } else {
            format!(
                "a {} product cannot become {}; allowed: {}",
                self.as_str(),
                to.as_str(),
                allowed.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ProductStatus::{self, *};

    #[test]
    fn forward_path_is_allowed() {
        assert!(Draft.transition_to(Published).is_ok());
        assert!(Published.transition_to(Deprecated).is_ok());
        assert!(Deprecated.transition_to(Retired).is_ok());
        assert!(Deprecated.transition_to(Published).is_ok());
        assert!(Retired.transition_to(Retired).is_ok(), "no-op is fine");
    }

    #[test]
    fn skipping_or_going_back_is_refused() {
        for (from, to) in [
            (Draft, Deprecated),
            (Draft, Retired),
            (Published, Draft),
            (Published, Retired),
            (Retired, Published),
            (Retired, Draft),
        ] {
            let err = from.transition_to(to).expect_err("must be refused");
            assert!(err.contains(from.as_str()), "{err}");
        }
    }

    #[test]
    fn round_trips_its_stored_form() {
        for s in [Draft, Published, Deprecated, Retired] {
            assert_eq!(ProductStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ProductStatus::parse("live"), None);
    }
}
