//! The rule table: the single source of truth of every change's verdict in
//! each mode, and why.

use super::Verdict;

/// One rule of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    /// Verdict in `consumers` mode.
    pub consumers: Verdict,
    /// Verdict in `strict` mode.
    pub strict: Verdict,
    pub why: &'static str,
}

use Verdict::{Breaking as B, Free as F, Warning as W};

/// The compatibility rules.
pub const RULES: &[Rule] = &[
    Rule {
        id: "object-removed",
        consumers: B,
        strict: B,
        why: "queries over the object fail",
    },
    Rule {
        id: "object-added",
        consumers: W,
        strict: B,
        why: "no existing query reads it",
    },
    Rule {
        id: "column-removed",
        consumers: B,
        strict: B,
        why: "queries naming the column fail (a rename is a removal and an addition)",
    },
    Rule {
        id: "column-added",
        consumers: W,
        strict: B,
        why: "existing queries do not name it; SELECT * grows a column",
    },
    Rule {
        id: "type-changed",
        consumers: B,
        strict: B,
        why: "values no longer compare, cast or aggregate the same",
    },
    Rule {
        id: "type-narrowed",
        consumers: B,
        strict: B,
        why: "values or precision that existed can no longer be held (incl. decimal precision or scale down)",
    },
    Rule {
        id: "type-widened",
        consumers: W,
        strict: W,
        why: "every old value still fits (int32 -> int64, float -> double, decimal precision up)",
    },
    Rule {
        id: "required-to-optional",
        consumers: B,
        strict: B,
        why: "readers that relied on values now meet NULLs",
    },
    Rule {
        id: "optional-to-required",
        consumers: F,
        strict: F,
        why: "readers that handled NULLs still work",
    },
    Rule {
        id: "unique-changed",
        consumers: B,
        strict: B,
        why: "joins and counts relying on uniqueness change meaning",
    },
    Rule {
        id: "primary-key-changed",
        consumers: B,
        strict: B,
        why: "the identity of a row changes",
    },
    Rule {
        id: "enum-value-removed",
        consumers: B,
        strict: B,
        why: "filters on that value stop matching",
    },
    Rule {
        id: "enum-value-added",
        consumers: W,
        strict: B,
        why: "exhaustive CASE expressions meet a new value",
    },
    Rule {
        id: "classification-loosened",
        consumers: B,
        strict: B,
        why: "data becomes visible beyond what governance agreed (public < internal < confidential < restricted; pii counts as confidential)",
    },
    Rule {
        id: "classification-tightened",
        consumers: W,
        strict: W,
        why: "some consumers may lose access",
    },
    Rule {
        id: "classification-changed",
        consumers: W,
        strict: W,
        why: "a label outside the known order changed",
    },
    Rule {
        id: "sla-weakened",
        consumers: B,
        strict: B,
        why: "a promise consumers planned on is withdrawn (later latency or frequency, shorter retention, lower availability, or removed)",
    },
    Rule {
        id: "sla-strengthened",
        consumers: F,
        strict: F,
        why: "a better promise",
    },
    Rule {
        id: "sla-changed",
        consumers: W,
        strict: W,
        why: "an SLA property outside the known ones changed",
    },
    Rule {
        id: "quality-rule-removed",
        consumers: B,
        strict: B,
        why: "a guarantee about the data is withdrawn",
    },
    Rule {
        id: "quality-rule-changed",
        consumers: W,
        strict: W,
        why: "a guarantee's threshold moved",
    },
    Rule {
        id: "quality-rule-added",
        consumers: F,
        strict: F,
        why: "a new guarantee",
    },
    Rule {
        id: "partitioning-changed",
        consumers: W,
        strict: W,
        why: "results stay the same; performance of filters may change",
    },
    Rule {
        id: "documentation-changed",
        consumers: F,
        strict: F,
        why: "description, business name, tags and examples do not change data",
    },
];

/// The rule table as Markdown: `docs/compatibility.md` (kept equal by a test).
pub fn rules_markdown() -> String {
    let verdict = |v: Verdict| match v {
        Verdict::Free => "allowed",
        Verdict::Warning => "allowed, with a warning",
        Verdict::Breaking => "**breaking**",
    };
    let mut out = String::from(
        "# Contract compatibility rules\n\n\
         Generated from `contracts/src/odcs/compat/rules.rs` (`tessera contract rules` prints it).\n\n\
         Within one major version, a new contract version is compared with the latest earlier one under \
         the product's compatibility mode. `consumers` (the default) promises that every query that worked \
         on an earlier version still works and still means the same; `strict` also refuses additions; \
         `none` reports changes without refusing any. A breaking change needs a new major version, which \
         runs side by side with the previous one, each with its own output port, until the old one's sunset.\n\n\
         | rule | consumers | strict | why |\n|---|---|---|---|\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.id,
            verdict(r.consumers),
            verdict(r.strict),
            r.why
        ));
    }
    out
}

/// The rule of an id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
