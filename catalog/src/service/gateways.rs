//! Gateways: their reports of the bundle they serve (SYNCED, STALE, NACKED) and
//! the query audit they send.

use chrono::{Duration as ChronoDuration, Utc};
use tessera_contracts::api::{AuditBatch, FieldError, GatewayReport, GatewayState, GatewayStatus};

use super::products::Drifted;
use super::validate::{check_name, field, finish};
use super::{Catalog, Error, Result};
use crate::authz::Caller;

/// A gateway silent for longer than this is STALE whatever it last reported
/// (gateways report at least every watch cycle, 25 s).
const REPORT_INTERVAL_GRACE: ChronoDuration = ChronoDuration::seconds(90);

/// A product reads `drifted` while a gateway that reported within this long
/// lists it (a gateway gone for good stops counting after it).
const DRIFT_WINDOW: ChronoDuration = ChronoDuration::hours(1);

/// Checks a report's drift list: names, versions and sizes.
fn check_drift(report: &GatewayReport) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if report.drift.len() > 10_000 {
        errors.push(field("drift", "at most 10000 products"));
    }
    for (i, d) in report.drift.iter().enumerate() {
        for (name, value) in [("domain", &d.domain), ("product", &d.product)] {
            if let Err(mut e) = check_name(name, value) {
                e.path = format!("drift[{i}].{name}");
                errors.push(e);
            }
        }
        if d.major_version == 0 {
            errors.push(field(&format!("drift[{i}].major_version"), "major versions start at 1"));
        }
        if d.mismatches.len() > 1000 {
            errors.push(field(&format!("drift[{i}].mismatches"), "at most 1000 mismatches"));
        }
    }
    errors
}

impl Catalog {
    pub async fn report_gateway(&self, caller: &Caller, name: &str, report: GatewayReport) -> Result<()> {
        self.authz.require_gateway(caller)?;
        check_name("name", name).map_err(|e| Error::Invalid(vec![e]))?;
        if report.error.as_ref().is_some_and(|e| e.chars().count() > 4000) {
            return Err(Error::Invalid(vec![field("error", "at most 4000 characters")]));
        }
        finish(check_drift(&report))?;
        Ok(self.store.report_gateway(name, &report).await?)
    }

    pub async fn list_gateways(&self, caller: &Caller) -> Result<Vec<GatewayStatus>> {
        self.authz.require_admin(caller)?;
        let current = self.build_bundle().await?;
        let now = Utc::now();
        Ok(self
            .store
            .list_gateways()
            .await?
            .into_iter()
            .map(|row| {
                let state = if row.report.rejected_version.is_some() {
                    GatewayState::Nacked
                } else if row.report.hash == current.hash && now - row.reported_at <= REPORT_INTERVAL_GRACE {
                    GatewayState::Synced
                } else {
                    GatewayState::Stale
                };
                GatewayStatus {
                    name: row.name,
                    state,
                    version: row.report.version,
                    hash: row.report.hash,
                    rejected_version: row.report.rejected_version,
                    error: row.report.error,
                    drift: row.report.drift,
                    reported_at: row.reported_at,
                }
            })
            .collect())
    }

    pub async fn add_audit(&self, caller: &Caller, batch: AuditBatch) -> Result<u64> {
        self.authz.require_gateway(caller)?;
        check_name("gateway", &batch.gateway).map_err(|e| Error::Invalid(vec![e]))?;
        if batch.records.len() > 10_000 {
            return Err(Error::Invalid(vec![field(
                "records",
                "at most 10000 records per batch",
            )]));
        }
        let errors: Vec<FieldError> = batch
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.sql.len() > 262_144)
            .map(|(i, _)| field(&format!("records[{i}].sql"), "at most 262144 bytes"))
            .collect();
        finish(errors)?;
        Ok(self.store.add_audit(&batch.gateway, &batch.records).await?)
    }

    /// The products that a gateway which reported within the last hour lists
    /// as drifting (one read of the gateways' reports).
    pub(super) async fn drifted_products(&self) -> Result<Drifted> {
        let since = Utc::now() - DRIFT_WINDOW;
        Ok(self
            .store
            .gateway_drift()
            .await?
            .into_iter()
            .filter(|(at, _)| *at >= since)
            .flat_map(|(_, drift)| drift.into_iter().map(|d| (d.domain, d.product)))
            .collect())
    }

    /// Records a report of the gateway running in this process (`tessera
    /// serve`): trusted, so neither authorized nor checked like a report over
    /// the API.
    pub async fn record_gateway_report(&self, name: &str, report: &GatewayReport) -> Result<()> {
        Ok(self.store.report_gateway(name, report).await?)
    }

    /// Stores a batch of query audit from the gateway running in this process;
    /// returns how many records were new.
    pub async fn add_audit_batch(&self, batch: &AuditBatch) -> Result<u64> {
        Ok(self.store.add_audit(&batch.gateway, &batch.records).await?)
    }
}
