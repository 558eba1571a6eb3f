//! Row-filter expressions: parsed, checked against a table's schema, and
//! instantiated for one principal. The catalog checks them when they are
//! written, gateways when they compile a bundle and again for each session.
//!
//! A row filter is one boolean SQL expression (PostgreSQL syntax) over the
//! product's columns. It may refer to the querying principal:
//! `attribute('regions')` (or `'groups'`, `'purposes'`) as the whole list of an
//! `IN (...)`, standing for the principal's values (an empty list is false), and
//! `current_principal()` for its name. Subqueries, aggregates, window functions
//! and volatile functions are refused: a filter decides on the row alone.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Schema};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ExprWithAlias, FunctionArg, FunctionArgExpr, FunctionArguments, Value, ValueWithSpan, Visitor,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use tessera_contracts::api::Attributes;
use tessera_contracts::policy::AttributeKey;

/// The functions filters may call (DataFusion's defaults), set up once.
static PLANNER: LazyLock<SessionState> = LazyLock::new(|| SessionStateBuilder::new().with_default_features().build());

/// Deep enough for any honest filter, shallow enough for the parser's stack.
const MAX_DEPTH: usize = 64;

/// Parses a row filter and checks its shape (no subqueries, known attributes).
pub fn parse(expression: &str) -> Result<SqlExpr, String> {
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(MAX_DEPTH)
        .try_with_sql(expression)
        .map_err(|e| e.to_string())?;
    let expr = parser.parse_expr().map_err(|e| e.to_string())?;
    let rest = parser.peek_token();
    if rest.token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(format!("unexpected {} after the expression", rest.token));
    }
    let mut check = Shape(Ok(()));
    let _ = datafusion::sql::sqlparser::ast::Visit::visit(&expr, &mut check);
    check.0?;
    Ok(expr)
}

struct Shape(Result<(), String>);

impl Visitor for Shape {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
        let refuse = |what: &str| ControlFlow::Break(Err(format!("a row filter cannot contain {what}")));
        let verdict = match expr {
            SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => refuse("a subquery"),
            SqlExpr::Function(f) if f.over.is_some() => refuse("a window function"),
            SqlExpr::Function(f) if function_name(f) == "attribute" => match attribute_key(f) {
                Ok(_) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(Err(e)),
            },
            _ => ControlFlow::Continue(()),
        };
        match verdict {
            ControlFlow::Continue(()) => ControlFlow::Continue(()),
            ControlFlow::Break(result) => {
                self.0 = result;
                ControlFlow::Break(())
            }
        }
    }
}

fn function_name(f: &datafusion::sql::sqlparser::ast::Function) -> String {
    f.name.to_string().to_ascii_lowercase()
}

fn attribute_key(f: &datafusion::sql::sqlparser::ast::Function) -> Result<AttributeKey, String> {
    let bad = || "attribute() takes one of 'groups', 'regions', 'purposes'".to_string();
    let FunctionArguments::List(list) = &f.args else {
        return Err(bad());
    };
    match list.args.as_slice() {
        [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(key),
                ..
            }))),
        ] => AttributeKey::parse(key).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// The columns a filter names (unqualified identifiers; the last part of qualified ones).
pub fn columns(expr: &SqlExpr) -> Vec<String> {
    struct Columns(Vec<String>);
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Identifier(ident) => self.0.push(ident.value.clone()),
                SqlExpr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.0.push(last.value.clone());
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = Columns(Vec::new());
    let _ = datafusion::sql::sqlparser::ast::Visit::visit(expr, &mut found);
    found.0.sort();
    found.0.dedup();
    found.0
}

/// The filter for one principal: attribute lists and the principal's name
/// written in as literals.
pub fn instantiate(expr: &SqlExpr, principal: &str, attributes: &Attributes) -> SqlExpr {
    let mut expr = expr.clone();
    let _ = visit_expressions_mut(&mut expr, |e| {
        match e {
            SqlExpr::InList { list, negated, .. } => {
                if let [SqlExpr::Function(f)] = list.as_slice()
                    && function_name(f) == "attribute"
                    && let Ok(key) = attribute_key(f)
                {
                    let values = key.values(attributes);
                    if values.is_empty() {
                        // x IN () is false, x NOT IN () true: as in SQL for an empty set.
                        *e = SqlExpr::Value(Value::Boolean(*negated).into());
                    } else {
                        *list = values.iter().map(|v| text(v)).collect();
                    }
                }
            }
            SqlExpr::Function(f) if function_name(f) == "current_principal" => *e = text(principal),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    expr
}

fn text(value: &str) -> SqlExpr {
    SqlExpr::Value(Value::SingleQuotedString(value.to_string()).into())
}

/// Plans an instantiated filter over `schema` into a DataFusion expression,
/// refusing anything that is not a deterministic boolean row predicate.
pub fn plan(expr: &SqlExpr, schema: &Schema) -> Result<Expr, String> {
    let df_schema = Arc::new(DFSchema::try_from(schema.clone()).map_err(|e| e.to_string())?);
    // Planned from the parsed expression (no second parse, in another dialect),
    // then coerced, so that its types meet the physical planner's expectations.
    let aliased = ExprWithAlias {
        expr: expr.clone(),
        alias: None,
    };
    let planned = PLANNER
        .create_logical_expr_from_sql_expr(aliased, &df_schema)
        .map_err(|e| strip(&e.to_string()))?;
    let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_schema(Arc::clone(&df_schema)).build());
    let planned = simplifier
        .coerce(planned, &df_schema)
        .map_err(|e| strip(&e.to_string()))?;
    let mut refused = None;
    planned
        .apply(|e| {
            let what = match e {
                Expr::AggregateFunction(_) => Some("an aggregate"),
                Expr::WindowFunction(_) => Some("a window function"),
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some("a subquery"),
                Expr::Placeholder(_) => Some("a parameter"),
                _ => None,
            };
            refused = what;
            Ok(if what.is_some() {
                datafusion::common::tree_node::TreeNodeRecursion::Stop
            } else {
                datafusion::common::tree_node::TreeNodeRecursion::Continue
            })
        })
        .map_err(|e| e.to_string())?;
    if let Some(what) = refused {
        return Err(format!("a row filter cannot contain {what}"));
    }
    if planned.is_volatile() {
        return Err("a row filter must be deterministic (no random() or now())".into());
    }
    let ty = planned
        .get_type(df_schema.as_ref())
        .map_err(|e| strip(&e.to_string()))?;
    if ty != DataType::Boolean && ty != DataType::Null {
        return Err(format!("a row filter must be boolean, this one is {ty}"));
    }
    Ok(planned)
}

fn strip(message: &str) -> String {
    message
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .to_string()
}

/// Checks a filter against a table schema, as it would be planned for a
/// principal holding one value of every attribute.
pub fn check(expression: &str, schema: &Schema) -> Result<(), String> {
    let parsed = parse(expression)?;
    let sample = Attributes {
        groups: vec!["g".into()],
        regions: vec!["r".into()],
        purposes: vec!["p".into()],
    };
    plan(&instantiate(&parsed, "p", &sample), schema).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("c_custkey", DataType::Int64, false),
            Field::new("c_nationkey", DataType::Int64, false),
            Field::new("c_region", DataType::Utf8, true),
        ])
    }

    #[test]
    fn filters_are_checked_and_instantiated() {
        assert_eq!(check("c_region IN (attribute('regions'))", &schema()), Ok(()));
        assert_eq!(
            check("c_nationkey < 5 AND current_principal() = 'ana'", &schema()),
            Ok(())
        );
        let errors = [
            ("c_nope = 1", "c_nope"),
            ("c_nationkey + 1", "must be boolean"),
            ("c_nationkey IN (SELECT 1)", "subquery"),
            ("count(*) > 1", "aggregate"),
            ("random() < 0.5", "deterministic"),
            ("c_region IN (attribute('salary'))", "attribute()"),
            ("c_nationkey < 5; DROP TABLE x", "unexpected"),
            ("c_nationkey <", ""),
        ];
        for (expression, needle) in errors {
            let e = check(expression, &schema()).expect_err(expression);
            assert!(e.contains(needle), "{expression}: {e}");
        }
        let attrs = Attributes {
            regions: vec!["EUROPE".into(), "ASIA".into()],
            ..Attributes::default()
        };
        let parsed =
            parse("c_region IN (attribute('regions')) OR c_region NOT IN (attribute('groups'))").expect("parsed");
        assert_eq!(
            instantiate(&parsed, "ana", &attrs).to_string(),
            "c_region IN ('EUROPE', 'ASIA') OR true"
        );
    }
}
