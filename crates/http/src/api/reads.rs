//! The read routes: reports, stories, statements, the digest, the latest
//! reconciliation run, adjustments, payout batches and `/metrics`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use clearing_app::core::settlement::{RiskReport, SettlementReport};
use clearing_app::core::Timestamp;
use clearing_app::dispute::statement::Statement;
use clearing_app::dispute::story::StoriesView;
use clearing_app::payout::PayoutView;
use clearing_app::resolve::AdjustmentsView;
use clearing_app::views::{DigestView, ReconView};

use super::doc::Refusals;
use super::{date, json, Answer, Caller, S};
use crate::{ApiError, Need};

#[utoipa::path(get, path = "/v1/settlement/{date}",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date")),
    responses((status = 200, description = "SPEC §7: what `report settlement --format json` prints", body = SettlementReport), Refusals),
    security(("bearer" = [])))]
pub(super) async fn settlement(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.settlement(d)).await?)
}

#[utoipa::path(get, path = "/v1/risk/{date}",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date")),
    responses((status = 200, description = "SPEC §7, §11: what `report risk --format json` prints", body = RiskReport), Refusals),
    security(("bearer" = [])))]
pub(super) async fn risk(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.risk(d)).await?)
}

#[utoipa::path(get, path = "/v1/txn/{id}",
    params(("id" = String, Path, description = "a txn_id or an rrn")),
    responses((status = 200, description = "SPEC §9: what `txn show --format json` prints", body = StoriesView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn txn(State(s): S, c: Caller, Path(id): Path<String>) -> Answer {
    c.may(Need::Read)?;
    json(s.read(move |l| l.stories(&id)).await?)
}

#[utoipa::path(get, path = "/v1/merchants/{id}/statement/{date}",
    params(
        ("id" = String, Path, description = "the merchant id"),
        ("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date"),
        ("as_of" = Option<String>, Query, format = DateTime, description = "the statement as the ledger knew it then (RFC 3339)")),
    responses((status = 200, description = "what `merchant statement --format json` prints", body = Statement), Refusals),
    security(("bearer" = [])))]
pub(super) async fn statement(
    State(s): S,
    c: Caller,
    Path((id, d)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    let as_of = q
        .get("as_of")
        .map(|t| {
            Timestamp::parse(t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "as_of: {t:?} is not an RFC 3339 time with an offset"
                ))
            })
        })
        .transpose()?;
    json(s.read(move |l| l.statement(&id, d, as_of.as_ref())).await?)
}

#[utoipa::path(get, path = "/v1/digest",
    responses((status = 200, description = "what `digest --format json` prints", body = DigestView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn digest(State(s): S, c: Caller) -> Answer {
    c.may(Need::Read)?;
    json(s.read(|l| l.digest()).await?)
}

#[utoipa::path(get, path = "/v1/recon/{date}",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date")),
    responses((status = 200, description = "the latest run of the date, as a rerun of its file prints it", body = ReconView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn recon_latest(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    let report = s.read(move |l| l.recon(d)).await?;
    json(ReconView::of(&report))
}

#[utoipa::path(get, path = "/v1/adjustments/{date}",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date")),
    responses((status = 200, description = "SPEC §14: what `report adjustments --format json` prints", body = AdjustmentsView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn adjustments(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.adjustments(d)).await?)
}

#[utoipa::path(get, path = "/v1/payouts/{date}",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the payout date")),
    responses((status = 200, description = "SPEC §13: what `report payout --format json` prints", body = PayoutView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn payout(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.payout(d)).await?)
}

/// `/metrics`: any token.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"), Refusals),
    security(("bearer" = [])))]
pub(super) async fn metrics_text(State(s): S, c: Caller) -> Answer {
    c.may(Need::Read)?;
    s.read(|l| crate::metrics::ledger_gauges(l)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response())
}
