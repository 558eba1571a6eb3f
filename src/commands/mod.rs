//! The catalog commands of the CLI, on the SDK: `login`, `whoami` and
//! `status` here; the resources' commands in their own modules.

mod access;
mod policies;
mod products;

pub use access::{AccessCommand, access};
pub use policies::{PolicyCommand, policy};
pub use products::{DomainCommand, ProductCommand, domain, product};

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Global, Hinted, Login, print_json, print_table};

pub async fn login(global: &Global) -> anyhow::Result<ExitCode> {
    let endpoint = global.endpoint()?;
    let key = match &global.key {
        Some(k) => k.clone(),
        None => {
            eprint!("API key for {endpoint}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the key")?;
            line.trim().to_string()
        }
    };
    if key.is_empty() {
        return Err(Hinted::new("no API key given", "pass --key <KEY> or type it when asked").into());
    }
    let who = global
        .client_for(endpoint.clone(), &key)?
        .whoami()
        .await
        .context("the platform did not accept the key")?;
    let path = Login { endpoint, key }.write()?;
    if global.json() {
        print_json(&who)?;
    } else {
        println!(
            "signed in as {} ({}); saved in {}",
            who.principal.name,
            if who.principal.admin { "admin" } else { "user" },
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(global: &Global) -> anyhow::Result<ExitCode> {
    let who = global.client()?.whoami().await?;
    if global.json() {
        print_json(&who)?;
    } else {
        println!(
            "{}{}",
            who.principal.name,
            if who.principal.admin { " (admin)" } else { "" }
        );
        let a = &who.principal.attributes;
        println!("  teams:    {}", join(&who.teams));
        println!("  groups:   {}", join(&a.groups));
        println!("  regions:  {}", join(&a.regions));
        println!("  purposes: {}", join(&a.purposes));
    }
    Ok(ExitCode::SUCCESS)
}

fn join(v: &[String]) -> String {
    if v.is_empty() { "-".into() } else { v.join(", ") }
}

/// The platform's version and every gateway's bundle sync, like `istioctl proxy-status`.
pub async fn status(global: &Global) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let version = client.version().await?;
    // Gateways' sync is for admins; others still get the catalog's version.
    let gateways = match client.gateways().await {
        Ok(g) => Some(g),
        Err(e) if e.is_forbidden() => None,
        Err(e) => return Err(e.into()),
    };
    let Some(gateways) = gateways else {
        if global.json() {
            print_json(&serde_json::json!({"endpoint": global.endpoint()?, "version": version}))?;
        } else {
            println!("{} at catalog version {version}", global.endpoint()?);
            println!("(gateways and their sync are shown to platform admins)");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let stale = gateways
        .iter()
        .any(|g| g.state != tessera_contracts::api::GatewayState::Synced);
    if global.json() {
        print_json(&serde_json::json!({"endpoint": global.endpoint()?, "version": version, "gateways": gateways}))?;
    } else {
        println!("{} at catalog version {version}", global.endpoint()?);
        let rows: Vec<Vec<String>> = gateways
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    format!("{:?}", g.state).to_uppercase(),
                    g.version.to_string(),
                    g.hash.chars().take(12).collect(),
                    g.reported_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    g.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("no gateway has reported yet");
        } else {
            print_table(
                &["GATEWAY", "STATE", "VERSION", "BUNDLE", "REPORTED (UTC)", "ERROR"],
                &rows,
            );
        }
    }
    // A gateway out of sync is a finding, for scripts that watch the mesh.
    Ok(if stale {
        ExitCode::from(crate::cli::exit::FOUND)
    } else {
        ExitCode::SUCCESS
    })
}
