//! The demo mesh of design.md: its personas, domains, products and policies.

use tessera_contracts::policy::{
    AttributeKey, ColumnSelector, Exemption, GrantSpec, MaskFunction, MaskSpec, RowFilterSpec, Subject, Target,
};

pub(super) struct Persona {
    pub(super) name: &'static str,
    pub(super) display: &'static str,
    /// One line on what this persona shows.
    pub(super) role: &'static str,
    pub(super) groups: &'static [&'static str],
    pub(super) regions: &'static [&'static str],
    pub(super) purposes: &'static [&'static str],
    /// The purpose its connection lines declare.
    pub(super) purpose: Option<&'static str>,
}

/// The platform admin is the bootstrap principal `admin`.
pub(super) const ADMIN: &str = "admin";

pub(super) const PERSONAS: [Persona; 7] = [
    Persona {
        name: ADMIN,
        display: "Platform admin",
        role: "platform admin: manages domains, principals and policies (masked and filtered like everyone else; holds every region)",
        groups: &[],
        // No role bypasses row filters: the admin sees every customer because it holds every region.
        regions: &["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "cora",
        display: "Cora (customers domain owner)",
        role: "owns the customers domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "sal",
        display: "Sal (sales domain owner)",
        role: "owns the sales domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "sue",
        display: "Sue (supply domain owner)",
        role: "owns the supply domain: sees its products unmasked",
        groups: &[],
        regions: &[],
        purposes: &[],
        purpose: None,
    },
    Persona {
        name: "ana",
        display: "Ana (analyst)",
        role: "analyst, purpose analytics: every product, PII hashed, customers of EUROPE and ASIA only",
        groups: &["analysts"],
        regions: &["EUROPE", "ASIA"],
        purposes: &["analytics"],
        purpose: Some("analytics"),
    },
    Persona {
        name: "fred",
        display: "Fred (fraud investigator)",
        role: "fraud investigator, purpose fraud: every product, PII in clear, every region",
        groups: &["investigators"],
        regions: &["AMERICA"],
        purposes: &["fraud"],
        purpose: Some("fraud"),
    },
    Persona {
        name: "nia",
        display: "Nia (new analyst)",
        role: "new analyst, no grant yet: sees the catalog, requests access (`tessera access request`)",
        groups: &[],
        regions: &["EUROPE"],
        purposes: &["analytics"],
        purpose: Some("analytics"),
    },
];

pub(super) struct DemoDomain {
    pub(super) name: &'static str,
    pub(super) title: &'static str,
    pub(super) description: &'static str,
    pub(super) team: &'static str,
    pub(super) owner: &'static str,
}

pub(super) const DOMAINS: [DemoDomain; 3] = [
    DemoDomain {
        name: "customers",
        title: "Customers",
        description: "Who buys from us, and where they are.",
        team: "customers_team",
        owner: "cora",
    },
    DemoDomain {
        name: "sales",
        title: "Sales",
        description: "Orders and their line items.",
        team: "sales_team",
        owner: "sal",
    },
    DemoDomain {
        name: "supply",
        title: "Supply",
        description: "Parts, suppliers, and who supplies which part at what cost.",
        team: "supply_team",
        owner: "sue",
    },
];

pub(super) struct DemoProduct {
    pub(super) domain: &'static str,
    pub(super) name: &'static str,
    pub(super) title: &'static str,
    pub(super) description: &'static str,
    pub(super) inputs: &'static [&'static str],
    pub(super) contract: &'static str,
}

/// In lineage order: a product's inputs come before it.
pub(super) const PRODUCTS: [DemoProduct; 8] = [
    DemoProduct {
        domain: "customers",
        name: "region",
        title: "Regions",
        description: "The five world regions.",
        inputs: &[],
        contract: include_str!("contracts/customers.region.odcs.yaml"),
    },
    DemoProduct {
        domain: "customers",
        name: "nation",
        title: "Nations",
        description: "The 25 nations we trade with, each in one region.",
        inputs: &["customers.region"],
        contract: include_str!("contracts/customers.nation.odcs.yaml"),
    },
    DemoProduct {
        domain: "customers",
        name: "customer",
        title: "Customers",
        description: "Every customer, with personal data classified pii.",
        inputs: &["customers.nation"],
        contract: include_str!("contracts/customers.customer.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "part",
        title: "Parts",
        description: "The parts we sell.",
        inputs: &[],
        contract: include_str!("contracts/supply.part.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "supplier",
        title: "Suppliers",
        description: "Who supplies us; phone classified pii, balance confidential.",
        inputs: &["customers.nation"],
        contract: include_str!("contracts/supply.supplier.odcs.yaml"),
    },
    DemoProduct {
        domain: "supply",
        name: "partsupp",
        title: "Part suppliers",
        description: "Which supplier supplies which part, at what cost.",
        inputs: &["supply.part", "supply.supplier"],
        contract: include_str!("contracts/supply.partsupp.odcs.yaml"),
    },
    DemoProduct {
        domain: "sales",
        name: "orders",
        title: "Orders",
        description: "Every order placed, one row per order.",
        inputs: &["customers.customer"],
        contract: include_str!("contracts/sales.orders.odcs.yaml"),
    },
    DemoProduct {
        domain: "sales",
        name: "lineitem",
        title: "Line items",
        description: "Every line of every order: what was shipped, when, at what price.",
        inputs: &["sales.orders", "supply.partsupp"],
        contract: include_str!("contracts/sales.lineitem.odcs.yaml"),
    },
];

/// A customer's region from its nation key (TPC-H's fixed nation -> region map).
pub(super) const REGION_OF_NATION: &str = "CASE WHEN c_nationkey IN (0, 5, 14, 15, 16) THEN 'AFRICA' \
     WHEN c_nationkey IN (1, 2, 3, 17, 24) THEN 'AMERICA' \
     WHEN c_nationkey IN (8, 9, 12, 18, 21) THEN 'ASIA' \
     WHEN c_nationkey IN (6, 7, 19, 22, 23) THEN 'EUROPE' ELSE 'MIDDLE EAST' END";

/// The example policies of design.md.
pub(super) fn grants() -> Vec<GrantSpec> {
    let group = |value: &str| Subject::Attribute {
        key: AttributeKey::Groups,
        value: value.into(),
    };
    vec![
        GrantSpec {
            name: "analysts_analytics".into(),
            subject: group("analysts"),
            target: Target::All,
            purposes: vec!["analytics".into()],
            expires_at: None,
        },
        GrantSpec {
            name: "investigators_fraud".into(),
            subject: group("investigators"),
            target: Target::All,
            purposes: vec!["fraud".into()],
            expires_at: None,
        },
    ]
}

pub(super) fn masks() -> Vec<MaskSpec> {
    let fraud = Exemption {
        purposes: vec!["fraud".into()],
        ..Exemption::default()
    };
    vec![
        MaskSpec {
            name: "pii_hashed".into(),
            target: Target::All,
            columns: ColumnSelector::Classification {
                classification: "pii".into(),
            },
            function: MaskFunction::Hash,
            exempt: fraud.clone(),
        },
        MaskSpec {
            name: "confidential_nulled".into(),
            target: Target::All,
            columns: ColumnSelector::Classification {
                classification: "confidential".into(),
            },
            function: MaskFunction::Null,
            exempt: fraud,
        },
        MaskSpec {
            name: "clerk_redacted".into(),
            target: Target::Product {
                domain: "sales".into(),
                product: "orders".into(),
            },
            columns: ColumnSelector::Column {
                column: "o_clerk".into(),
            },
            function: MaskFunction::Redact,
            exempt: Exemption {
                groups: vec!["investigators".into()],
                ..Exemption::default()
            },
        },
    ]
}

pub(super) fn row_filters() -> Vec<RowFilterSpec> {
    vec![RowFilterSpec {
        name: "customer_regions".into(),
        domain: "customers".into(),
        product: "customer".into(),
        expression: format!("{REGION_OF_NATION} IN (attribute('regions'))"),
        exempt: Exemption {
            purposes: vec!["fraud".into()],
            ..Exemption::default()
        },
    }]
}
