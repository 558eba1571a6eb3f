//! Governance policies: grants, column masks and row filters, and how they are
//! decided for one principal, one query purpose and one product.
//!
//! The catalog stores them (`/api/v1/grants`, `/api/v1/masks`,
//! `/api/v1/row-filters`) and ships them to gateways in the policy bundle; the
//! decisions below are the only place where they are interpreted, so the
//! catalog's listings and every gateway's sessions agree.
//!
//! Rules:
//! - Platform admins and a product's owners (its team and its domain's team)
//!   may query it; anyone else needs a live grant whose subject matches them and
//!   whose purposes (if any) include the query's declared purpose.
//! - Masks and row filters apply to everyone but the product's owners and the
//!   principals they exempt (by name, group or purpose). Several row filters on a
//!   product are all applied; several masks on a column: the strictest wins
//!   (`null`, then `redact`, `hash`, `partial`).
//! - A declared purpose counts only when the principal's `purposes` attribute
//!   lists it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::Attributes;

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    /// One principal, by name.
    Principal { name: String },
    /// Every principal whose `groups` attribute, or team membership, includes `name`.
    Group { name: String },
    /// Every principal whose attribute `key` lists `value` (e.g. regions = EUROPE).
    Attribute { key: AttributeKey, value: String },
}

/// The principal attributes a grant or a row filter may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKey {
    Groups,
    Regions,
    Purposes,
}

impl AttributeKey {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "groups" => Some(Self::Groups),
            "regions" => Some(Self::Regions),
            "purposes" => Some(Self::Purposes),
            _ => None,
        }
    }

    pub fn values(self, attributes: &Attributes) -> &[String] {
        match self {
            Self::Groups => &attributes.groups,
            Self::Regions => &attributes.regions,
            Self::Purposes => &attributes.purposes,
        }
    }
}

/// Which products a grant or mask covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// One product.
    Product { domain: String, product: String },
    /// Every product of a domain.
    Domain { domain: String },
    /// Every product carrying a tag.
    Tag { tag: String },
    /// Every product of the mesh (platform admins only).
    All,
}

impl Target {
    pub fn covers(&self, domain: &str, product: &str, tags: &[String]) -> bool {
        match self {
            Self::Product { domain: d, product: p } => d == domain && p == product,
            Self::Domain { domain: d } => d == domain,
            Self::Tag { tag } => tags.iter().any(|t| t == tag),
            Self::All => true,
        }
    }

    /// The one domain this target lies in, when it lies in one.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Self::Product { domain, .. } | Self::Domain { domain } => Some(domain),
            Self::Tag { .. } | Self::All => None,
        }
    }
}

/// Which columns a mask applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnSelector {
    /// Every column whose contract classification is this one (e.g. `pii`).
    Classification { classification: String },
    /// One column, by name.
    Column { column: String },
}

/// How a masked column reads. Masked columns keep their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MaskFunction {
    /// NULL of the column's type.
    Null,
    /// `'***'` for text, NULL otherwise.
    Redact,
    /// Lower-case hex SHA-256 of the value's text form (a text column).
    Hash,
    /// The last `keep` characters of text (NULL for other types).
    Partial {
        #[schema(minimum = 1, maximum = 64)]
        keep: u32,
    },
}

impl MaskFunction {
    /// Lower is stricter: the strictest of several masks on a column wins.
    fn strictness(self) -> u8 {
        match self {
            Self::Null => 0,
            Self::Redact => 1,
            Self::Hash => 2,
            Self::Partial { .. } => 3,
        }
    }
}

/// Who a mask or row filter does not apply to (besides the product's owners).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    #[serde(default)]
    pub principals: Vec<String>,
    /// Groups (the `groups` attribute or a team membership).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Purposes: a query declaring one of them (and entitled to it) is exempt.
    #[serde(default)]
    pub purposes: Vec<String>,
}

/// Access to products' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// Unique among grants.
    pub name: String,
    pub subject: Subject,
    pub target: Target,
    /// When not empty, the grant counts only for queries declaring one of these purposes.
    #[serde(default)]
    pub purposes: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A column mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// Unique among masks.
    pub name: String,
    pub target: Target,
    pub columns: ColumnSelector,
    pub function: MaskFunction,
    #[serde(default)]
    pub exempt: Exemption,
}

/// A row filter: only rows for which `expression` is true are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowFilterSpec {
    /// Unique among row filters.
    pub name: String,
    pub domain: String,
    pub product: String,
    /// A boolean SQL expression over the product's columns. `attribute('regions')`
    /// (or `groups`, `purposes`) in an IN list stands for the querying principal's
    /// values, `current_principal()` for its name; for example
    /// `c_region IN (attribute('regions'))`.
    #[schema(min_length = 1, max_length = 8192)]
    pub expression: String,
    #[serde(default)]
    pub exempt: Exemption,
}

macro_rules! stored {
    ($(#[$doc:meta])* $name:ident, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// What was written.
            pub spec: $spec,
            /// Increases with each change; the ETag, for If-Match.
            pub revision: i64,
            pub created_by: String,
            pub created_at: DateTime<Utc>,
            pub updated_at: DateTime<Utc>,
        }
    };
}

stored!(
    /// A stored grant.
    Grant,
    GrantSpec
);
stored!(
    /// A stored column mask.
    Mask,
    MaskSpec
);
stored!(
    /// A stored row filter.
    RowFilter,
    RowFilterSpec
);

/// Who is asking, as policy decisions need it.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub name: &'a str,
    pub admin: bool,
    pub attributes: &'a Attributes,
    pub teams: &'a [String],
    /// The query's purpose, once checked against the principal's entitlement.
    pub purpose: Option<&'a str>,
}

impl Asker<'_> {
    fn in_group(&self, group: &str) -> bool {
        self.attributes.groups.iter().any(|g| g == group) || self.teams.iter().any(|t| t == group)
    }

    fn exempt(&self, exemption: &Exemption) -> bool {
        exemption.principals.iter().any(|p| p == self.name)
            || exemption.groups.iter().any(|g| self.in_group(g))
            || self
                .purpose
                .is_some_and(|purpose| exemption.purposes.iter().any(|p| p == purpose))
    }
}

/// The purpose a query counts with: the declared one if the principal may declare it.
/// `Err` holds a refused purpose (declared, not entitled), which counts as none.
pub fn effective_purpose<'a>(attributes: &Attributes, declared: Option<&'a str>) -> Result<Option<&'a str>, &'a str> {
    match declared {
        None => Ok(None),
        Some(p) if attributes.purposes.iter().any(|a| a == p) => Ok(Some(p)),
        Some(p) => Err(p),
    }
}

impl Subject {
    pub fn matches(&self, asker: &Asker<'_>) -> bool {
        match self {
            Self::Principal { name } => name == asker.name,
            Self::Group { name } => asker.in_group(name),
            Self::Attribute { key, value } => key.values(asker.attributes).iter().any(|v| v == value),
        }
    }
}

impl GrantSpec {
    /// Whether this grant gives `asker` the product now. With `any_purpose`, a
    /// grant restricted to purposes counts whatever the query declares (for
    /// catalog visibility, which has no query).
    pub fn gives(
        &self,
        asker: &Asker<'_>,
        domain: &str,
        product: &str,
        tags: &[String],
        now: DateTime<Utc>,
        any_purpose: bool,
    ) -> bool {
        self.expires_at.is_none_or(|at| at > now)
            && self.subject.matches(asker)
            && self.target.covers(domain, product, tags)
            && (any_purpose
                || self.purposes.is_empty()
                || asker.purpose.is_some_and(|p| self.purposes.iter().any(|g| g == p)))
    }
}

/// A column of a product's port as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyColumn {
    pub name: String,
    #[serde(default)]
    pub classification: Option<String>,
}

/// The masks and row filters one principal's queries get on one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablePolicy {
    /// Column -> (mask function, mask name), in column order.
    pub masks: Vec<(String, MaskFunction, String)>,
    /// (row filter name, expression): all must hold.
    pub filters: Vec<(String, String)>,
}

impl TablePolicy {
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty() && self.filters.is_empty()
    }
}

/// The policy `asker` gets on a table with `columns` of the product
/// `domain.product` (`owner` when the asker owns it: owners are never masked or filtered).
#[allow(clippy::too_many_arguments)]
pub fn table_policy(
    asker: &Asker<'_>,
    owner: bool,
    domain: &str,
    product: &str,
    tags: &[String],
    columns: &[PolicyColumn],
    masks: &[MaskSpec],
    filters: &[RowFilterSpec],
) -> TablePolicy {
    let mut out = TablePolicy::default();
    if owner {
        return out;
    }
    for column in columns {
        let strictest = masks
            .iter()
            .filter(|m| m.target.covers(domain, product, tags) && !asker.exempt(&m.exempt))
            .filter(|m| match &m.columns {
                ColumnSelector::Column { column: c } => *c == column.name,
                ColumnSelector::Classification { classification } => {
                    column.classification.as_deref() == Some(classification.as_str())
                }
            })
            .min_by_key(|m| (m.function.strictness(), m.name.as_str()));
        if let Some(mask) = strictest {
            out.masks.push((column.name.clone(), mask.function, mask.name.clone()));
        }
    }
    for filter in filters {
        if filter.domain == domain && filter.product == product && !asker.exempt(&filter.exempt) {
            out.filters.push((filter.name.clone(), filter.expression.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(groups: &[&str], purposes: &[&str]) -> Attributes {
        Attributes {
            groups: groups.iter().map(|s| (*s).into()).collect(),
            regions: vec!["EUROPE".into()],
            purposes: purposes.iter().map(|s| (*s).into()).collect(),
        }
    }

    fn asker<'a>(attributes: &'a Attributes, purpose: Option<&'a str>) -> Asker<'a> {
        Asker {
            name: "ana",
            admin: false,
            attributes,
            teams: &[],
            purpose,
        }
    }

    #[test]
    fn grants_match_subject_target_purpose_and_expiry() {
        let now = Utc::now();
        let a = attrs(&["analysts"], &["analytics"]);
        let grant = GrantSpec {
            name: "g".into(),
            subject: Subject::Attribute {
                key: AttributeKey::Regions,
                value: "EUROPE".into(),
            },
            target: Target::Domain { domain: "sales".into() },
            purposes: vec!["analytics".into()],
            expires_at: Some(now + chrono::Duration::hours(1)),
        };
        assert!(grant.gives(&asker(&a, Some("analytics")), "sales", "orders", &[], now, false));
        assert!(!grant.gives(&asker(&a, None), "sales", "orders", &[], now, false));
        assert!(grant.gives(&asker(&a, None), "sales", "orders", &[], now, true));
        assert!(!grant.gives(&asker(&a, Some("analytics")), "supply", "part", &[], now, false));
        assert!(!grant.gives(
            &asker(&a, Some("analytics")),
            "sales",
            "orders",
            &[],
            now + chrono::Duration::hours(2),
            false
        ));
        let group = Subject::Group {
            name: "analysts".into(),
        };
        assert!(group.matches(&asker(&a, None)));
        assert_eq!(effective_purpose(&a, Some("analytics")), Ok(Some("analytics")));
        assert_eq!(effective_purpose(&a, Some("fraud")), Err("fraud"));
    }

    #[test]
    fn strictest_mask_wins_and_exemptions_and_owners_escape() {
        let columns = vec![
            PolicyColumn {
                name: "c_phone".into(),
                classification: Some("pii".into()),
            },
            PolicyColumn {
                name: "c_acctbal".into(),
                classification: None,
            },
        ];

        let masks = vec![
            MaskSpec {
                name: "pii".into(),
                target: Target::All,
                columns: ColumnSelector::Classification {
                    classification: "pii".into(),
                },
                function: MaskFunction::Hash,
                exempt: Exemption {
                    purposes: vec!["fraud".into()],
                    ..Exemption::default()
                },
            },
            MaskSpec {
                name: "phone".into(),
                target: Target::Product {
                    domain: "customers".into(),
                    product: "customer".into(),
                },
                columns: ColumnSelector::Column {
                    column: "c_phone".into(),
                },
                function: MaskFunction::Partial { keep: 4 },
                exempt: Exemption::default(),
            },
        ];
        let filters = vec![RowFilterSpec {
            name: "regions".into(),
            domain: "customers".into(),
            product: "customer".into(),
            expression: "c_nationkey < 5".into(),
            exempt: Exemption {
                groups: vec!["auditors".into()],
                ..Exemption::default()
            },
        }];
        let a = attrs(&[], &["fraud"]);
        let p = table_policy(
            &asker(&a, None),
            false,
            "customers",
            "customer",
            &[],
            &columns,
            &masks,
            &filters,
        );
        assert_eq!(
            p.masks,
            [("c_phone".to_string(), MaskFunction::Hash, "pii".to_string())]
        );
        assert_eq!(p.filters.len(), 1);
        let fraud = table_policy(
            &asker(&a, Some("fraud")),
            false,
            "customers",
            "customer",
            &[],
            &columns,
            &masks,
            &filters,
        );
        assert_eq!(
            fraud.masks,
            [(
                "c_phone".to_string(),
                MaskFunction::Partial { keep: 4 },
                "phone".to_string()
            )]
        );
        let auditor = attrs(&["auditors"], &[]);
        let p = table_policy(
            &asker(&auditor, None),
            false,
            "customers",
            "customer",
            &[],
            &columns,
            &masks,
            &filters,
        );
        assert!(p.filters.is_empty());
        assert!(
            table_policy(
                &asker(&a, None),
                true,
                "customers",
                "customer",
                &[],
                &columns,
                &masks,
                &filters
            )
            .is_empty()
        );
    }
}
