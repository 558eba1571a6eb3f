//! `tessera access`: requesting access to products, and deciding requests.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use tessera_contracts::api::{AccessApproval, AccessDenial, AccessRequestCreate, AccessRequestStatus};

use crate::cli::{Global, Hinted, PAGE, all_pages, print_items, print_json, product_ref};
use tessera_sdk::AccessRequestParams;

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Ask a product's owners for access, for one purpose.
    Request {
        /// `domain.product`
        product: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        justification: String,
    },
    /// Your requests, and those for the products you own.
    List {
        #[arg(long, value_enum)]
        status: Option<RequestStatusArg>,
        /// `domain.product`
        #[arg(long)]
        product: Option<String>,
    },
    /// Approve a request: a grant for the requester, that product and purpose.
    Approve {
        id: i64,
        /// When the grant ends (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RequestStatusArg {
    Pending,
    Approved,
    Denied,
}

fn parse_instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Hinted::new(format!("{s:?} is not a date"), "give YYYY-MM-DD or an RFC 3339 instant"))?;
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).context("invalid date")
}

pub async fn access(global: &Global, command: AccessCommand) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let request = match command {
        AccessCommand::Request {
            product,
            purpose,
            justification,
        } => {
            let (d, p) = product_ref(&product)?;
            client
                .request_access(&d, &p, &AccessRequestCreate { purpose, justification })
                .await?
        }
        AccessCommand::List { status, product } => {
            let (domain, product) = match product.as_deref().map(product_ref).transpose()? {
                Some((d, p)) => (Some(d), Some(p)),
                None => (None, None),
            };
            let status = status.map(|s| match s {
                RequestStatusArg::Pending => AccessRequestStatus::Pending,
                RequestStatusArg::Approved => AccessRequestStatus::Approved,
                RequestStatusArg::Denied => AccessRequestStatus::Denied,
            });
            let items = all_pages(async |cursor| {
                let params = AccessRequestParams {
                    status,
                    domain: domain.clone(),
                    product: product.clone(),
                    limit: PAGE,
                    cursor,
                };
                client.access_requests(&params).await
            })
            .await?;
            let header = ["ID", "PRODUCT", "REQUESTER", "PURPOSE", "STATUS", "JUSTIFICATION"];
            print_items(global, &items, &header, |r| {
                vec![
                    r.id.to_string(),
                    format!("{}.{}", r.domain, r.product),
                    r.requester.clone(),
                    r.purpose.clone(),
                    format!("{:?}", r.status).to_lowercase(),
                    r.justification.clone(),
                ]
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        AccessCommand::Approve { id, expires, note } => {
            let expires_at = expires.as_deref().map(parse_instant).transpose()?;
            client.approve_access(id, &AccessApproval { expires_at, note }).await?
        }
        AccessCommand::Deny { id, note } => client.deny_access(id, &AccessDenial { note }).await?,
    };
    if global.json() {
        print_json(&request)?;
    } else {
        println!(
            "request {}: {} asks {}.{} for purpose {}: {}",
            request.id,
            request.requester,
            request.domain,
            request.product,
            request.purpose,
            format!("{:?}", request.status).to_lowercase()
        );
        if let Some(grant) = &request.grant_name {
            println!("  granted by policy {grant}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
