//! `/metrics`: Prometheus text. Requests are counted and timed by route
//! template and status as they are answered; the ledger's own figures
//! (payout lines by status, reconciliation breaks by category and
//! resolution) are read when scraped; each catch-up of the projections (the
//! follower's, or a request's) records the lag it found and the position it
//! reached per partition, and counts the events it applied by type; lines
//! ingested through the service are counted by outcome and reject reason.
//! Never a merchant id, card or token as a label.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use clearing_app::core::payout::LineStatus;
use clearing_app::{AppError, Lag, ReadLedger};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub(crate) const REQUESTS: &str = "clearing_http_requests_total";
pub(crate) const LATENCY: &str = "clearing_http_request_duration_seconds";

/// Installs the process's recorder (once) and records the build.
pub(crate) fn install() -> Result<PrometheusHandle, AppError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(LATENCY.to_string()),
            &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
        )
        .and_then(|b| b.install_recorder())
        .map_err(|e| AppError::storage(format!("metrics: {e}")))?;
    metrics::gauge!("clearing_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// Counts what an ingest through the service accepted and rejected.
pub(crate) fn ingested(s: &clearing_app::IngestSummary) {
    metrics::counter!("clearing_ingest_lines_total", "outcome" => "accepted").increment(s.accepted);
    metrics::counter!("clearing_ingest_lines_total", "outcome" => "duplicate")
        .increment(s.duplicates);
    for (reason, n) in &s.rejected {
        metrics::counter!("clearing_rejects_total", "reason" => reason.to_string()).increment(*n);
    }
}

/// Counts and times every routed request.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(LATENCY, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Records what one opening of the ledger found and applied: per
/// partition of `topic`, the lag it found (offsets between the projections
/// and the end of the log, before catching up) and the position it left
/// the projections at; the events it applied, by type.
pub(crate) fn caught_up(topic: &str, l: &ReadLedger, lag: &[Lag]) {
    for g in lag {
        metrics::gauge!(
            "clearing_projection_lag_offsets",
            "topic" => topic.to_string(),
            "partition" => g.partition.to_string()
        )
        .set(g.behind() as f64);
    }
    for (partition, next) in l.projector().stored_positions().iter() {
        metrics::gauge!(
            "clearing_projection_next_offset",
            "topic" => topic.to_string(),
            "partition" => partition.to_string()
        )
        .set(next as f64);
    }
    for (kind, n) in l.projector().applied_by_type() {
        metrics::counter!("clearing_events_applied_total", "type" => *kind).increment(*n);
    }
}

/// Sets the gauges read from the ledger at scrape time.
pub(crate) fn ledger_gauges(l: &ReadLedger) -> Result<(), AppError> {
    let mut lines = [0u64; 3];
    for b in l.payout_batches()? {
        for s in b.line_statuses().values() {
            lines[*s as usize] += 1;
        }
    }
    for s in LineStatus::ALL {
        metrics::gauge!("clearing_payout_lines", "status" => s.as_str())
            .set(lines[s as usize] as f64);
    }
    // breaks of every date's latest run, by category and how resolved
    let p = l.projector();
    let mut breaks: std::collections::BTreeMap<(&'static str, &'static str), u64> =
        Default::default();
    for run in p.recon_latest_runs()? {
        let date = run.value.business_date;
        let resolved: std::collections::HashMap<_, _> = p
            .resolutions(date)?
            .into_iter()
            .map(|r| (r.value.key.clone(), r.value.decision.as_str()))
            .collect();
        for b in p.recon_breaks(date, &run.value.file_sha256)? {
            let f = &b.value.finding;
            let how = resolved.get(&f.key).copied().unwrap_or("unresolved");
            *breaks.entry((f.category.as_str(), how)).or_default() += 1;
        }
    }
    for ((category, resolution), n) in breaks {
        metrics::gauge!(
            "clearing_reconciliation_breaks",
            "category" => category,
            "resolution" => resolution
        )
        .set(n as f64);
    }
    Ok(())
}
