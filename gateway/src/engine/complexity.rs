//! Bounds on a statement's shape, checked on its syntax tree before anything
//! plans it.
//!
//! DataFusion's planner and optimizer walk expressions recursively, and some
//! of their rules are quadratic in an expression's depth: a flat `1+1+…+1`
//! (which the SQL parser reads iteratively, so its recursion limit never
//! fires) is a left-deep tree as deep as it is long, and with 10,000 terms it
//! plans for minutes and then overflows a thread's stack. So a statement is
//! measured first: how deep its expressions nest (binary operators, function
//! calls, subqueries), how many expression nodes and query blocks it holds,
//! how long its IN lists are. The walk stops at the first bound exceeded, so
//! it never recurses deeper than the depth bound itself.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::config::Limits;
use crate::error::QueryError;

/// Measures a statement against `limits`; the first bound it exceeds is the error.
pub fn check<V: Visit>(statement: &V, limits: &Limits) -> Result<(), QueryError> {
    let mut walk = Walk {
        limits,
        depth: 0,
        nodes: 0,
        queries: 0,
    };
    match statement.visit(&mut walk) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(what) => Err(QueryError::TooComplex(what)),
    }
}

struct Walk<'a> {
    limits: &'a Limits,
    depth: usize,
    nodes: usize,
    queries: usize,
}

impl Visitor for Walk<'_> {
    type Break = String;

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        self.queries += 1;
        if self.queries > self.limits.max_query_blocks {
            return ControlFlow::Break(format!(
                "the statement holds more than {} queries and subqueries",
                self.limits.max_query_blocks
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        self.depth += 1;
        // Literals are leaves the planner only copies (an IN list of values
        // is bounded by its own limit): they do not count as nodes.
        if !matches!(expr, Expr::Value(_)) {
            self.nodes += 1;
        }
        if self.depth > self.limits.max_expr_depth {
            return ControlFlow::Break(format!(
                "an expression nests deeper than {} levels (a long chain of operators counts as deep)",
                self.limits.max_expr_depth
            ));
        }
        if self.nodes > self.limits.max_expr_nodes {
            return ControlFlow::Break(format!(
                "the statement holds more than {} expressions (besides literal values)",
                self.limits.max_expr_nodes
            ));
        }
        if let Expr::InList { list, .. } = expr
            && list.len() > self.limits.max_in_list
        {
            return ControlFlow::Break(format!(
                "an IN list holds {} values; at most {} are accepted (join a product instead)",
                list.len(),
                self.limits.max_in_list
            ));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<String> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Screens SQL text another parser will read (PostgreSQL wire's statements go
/// through datafusion-postgres, which plans some of them itself): the shape
/// of each statement in it (its size is checked first, by the caller). Text this parser cannot read is
/// left to the other one, whose own errors answer it.
pub fn screen(sql: &str, limits: &Limits) -> Result<(), QueryError> {
    let parsed = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(limits.max_parse_depth)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements());
    match parsed {
        Ok(statements) => statements.iter().try_for_each(|s| check(s, limits)),
        Err(_) => Ok(()),
    }
}
