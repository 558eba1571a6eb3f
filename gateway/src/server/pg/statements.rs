//! What each statement a PostgreSQL client sends is, before anything runs it:
//! a query for the engine, a harmless session statement that datafusion-postgres
//! answers, the connection's purpose, an acknowledged no-op, or refused.

use datafusion::sql::sqlparser::ast::{Set, Statement};

use crate::error::QueryError;

/// The session variables clients set on connecting, which change nothing in the
/// engine; datafusion-postgres records them. Any other SET is refused.
pub(super) const HARMLESS_SETTINGS: &[&str] = &[
    "application_name",
    "extra_float_digits",
    "client_encoding",
    "datestyle",
    "intervalstyle",
    "bytea_output",
    "search_path",
    "timezone",
    "time zone",
    "statement_timeout",
    "client_min_messages",
    "standard_conforming_strings",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
    "transaction_isolation",
    "jit",
];

/// The setting that declares a connection's purpose: `SET tessera.purpose = 'fraud'`,
/// or at connection time `options='-c tessera.purpose=fraud'`.
pub(super) const PURPOSE_SETTING: &str = "tessera.purpose";

/// The purpose in a startup `options` parameter (`-c name=value` or `--name=value`).
pub(super) fn startup_purpose(options: &str) -> Option<String> {
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next(),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('='))
            && name.eq_ignore_ascii_case(PURPOSE_SETTING)
        {
            return Some(value.to_string());
        }
    }
    None
}

pub(super) enum Verdict {
    Query,
    Pass,
    /// `SET tessera.purpose`: the connection's queries count with this purpose from now on.
    Purpose(Option<String>),
    /// Answered with this command tag and nothing else: savepoints, which
    /// drivers open around their own statements (psycopg, SQLAlchemy), mean
    /// nothing to a gateway that never writes.
    Acknowledge(&'static str),
    Refuse(QueryError),
}

pub(super) fn judge(statement: &Statement) -> Verdict {
    match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. } => Verdict::Query,
        Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => Verdict::Pass,
        Statement::Savepoint { .. } => Verdict::Acknowledge("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Verdict::Acknowledge("RELEASE"),
        Statement::Rollback { savepoint: Some(_), .. } => Verdict::Acknowledge("ROLLBACK"),
        Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => Verdict::Pass,
        Statement::Set(Set::SingleAssignment { variable, values, .. })
            if variable.to_string().eq_ignore_ascii_case(PURPOSE_SETTING) =>
        {
            use datafusion::sql::sqlparser::ast::{Expr, Value};
            match values.as_slice() {
                [Expr::Value(v)] => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        Verdict::Purpose((!s.is_empty()).then(|| s.clone()))
                    }
                    Value::Null => Verdict::Purpose(None),
                    _ => Verdict::Refuse(QueryError::Plan(format!(
                        "{PURPOSE_SETTING} takes a name, e.g. 'fraud'"
                    ))),
                },
                [Expr::Identifier(ident)] if ident.value.eq_ignore_ascii_case("default") => Verdict::Purpose(None),
                [Expr::Identifier(ident)] => Verdict::Purpose(Some(ident.value.clone())),
                _ => Verdict::Refuse(QueryError::Plan(format!(
                    "{PURPOSE_SETTING} takes one name, e.g. 'fraud'"
                ))),
            }
        }
        Statement::Set(set) => {
            let name = match set {
                Set::SingleAssignment { variable, .. } => variable.to_string().to_lowercase(),
                Set::SetTimeZone { .. } => "timezone".into(),
                Set::SetNames { .. } | Set::SetNamesDefault {} => "client_encoding".into(),
                other => other.to_string().to_lowercase(),
            };
            if HARMLESS_SETTINGS.contains(&name.as_str()) {
                Verdict::Pass
            } else {
                Verdict::Refuse(QueryError::NotAllowed(format!(
                    "SET {name} is not allowed: session settings that change the engine are refused"
                )))
            }
        }
        other => {
            let text = other.to_string();
            let verb: Vec<&str> = text.split_whitespace().take(2).collect();
            Verdict::Refuse(QueryError::NotAllowed(format!(
                "{} is not allowed: the gateway answers queries only (SELECT, WITH, VALUES, EXPLAIN)",
                verb.join(" ")
            )))
        }
    }
}
