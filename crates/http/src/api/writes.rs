//! The routes that record: transactions, reconciliation runs, fee and
//! registry loads, break resolutions (§14) and the payout steps (§13). The
//! token's name is the operator recorded with each change.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use clearing_app::core::recon::{MatchKey, ReconType};
use clearing_app::core::resolution::Decision;
use clearing_app::payout::{BankResultView, PayoutView};
use clearing_app::resolve::{ResolutionView, Resolve};
use clearing_app::views::ReconView;
use clearing_app::{FeesLoaded, IngestSummary, Layout, Named, RegistryLoaded};

use super::doc::{BankCsv, FeesBody, Refusals, RegistryBody, ResolveBody};
use super::{date, field, json, object, optional, text, Answer, Caller, S};
use crate::{ApiError, Need};

#[utoipa::path(post, path = "/v1/transactions",
    request_body(content = String, content_type = "text/plain", description = "transaction lines (SPEC §2), as `ingest` reads them; not empty"),
    responses((status = 200, description = "what `ingest --format json` prints", body = IngestSummary), Refusals),
    security(("bearer" = [])))]
pub(super) async fn transactions(State(s): S, c: Caller, body: Bytes) -> Answer {
    let body = text(body)?;
    c.may(Need::Operate)?;
    if body.trim().is_empty() {
        return Err(ApiError::bad_request("body: no transaction lines"));
    }
    let summary = s
        .write(move |r| r.ingest("request", body.as_bytes(), |_| {}))
        .await?;
    crate::metrics::ingested(&summary);
    json(summary)
}

#[utoipa::path(post, path = "/v1/recon/{date}",
    params(
        ("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date"),
        ("layout" = Option<Layout>, Query, description = "the file's layout (default csv)")),
    request_body(content = String, content_type = "text/plain", description = "the channel's clearing file (SPEC §8)"),
    responses((status = 200, description = "SPEC §11: what `recon --format json` prints", body = ReconView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn recon(
    State(s): S,
    c: Caller,
    Path(d): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Answer {
    let body = text(body)?;
    c.may(Need::Operate)?;
    let d = date(&d, "date")?;
    let layout = match q.get("layout").map(String::as_str) {
        None => Layout::Csv,
        Some(name) => Layout::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!("layout: {name:?} is not csv or unionpay-fixed"))
        })?,
    };
    let report = s
        .write(move |r| r.reconcile("request", body.as_bytes(), layout, d))
        .await?;
    json(ReconView::of(&report))
}

/// `fees load`.
#[utoipa::path(post, path = "/v1/fees",
    request_body(content = FeesBody, content_type = "application/json"),
    responses((status = 200, description = "the schedule's version, and whether it changed", body = FeesLoaded), Refusals),
    security(("bearer" = [])))]
pub(super) async fn fees(State(s): S, c: Caller, body: Bytes) -> Answer {
    let body = text(body)?;
    c.may(Need::Administer)?;
    let v = object(&body)?;
    let fees = field(&v, "fees")?.to_string();
    let holidays = optional(&v, "holidays")?.map(str::to_string);
    json(
        s.write(move |r| {
            r.load_fees(
                Named {
                    name: "fees",
                    text: &fees,
                },
                holidays.as_deref().map(|h| Named {
                    name: "holidays",
                    text: h,
                }),
            )
        })
        .await?,
    )
}

/// `registry load`.
#[utoipa::path(post, path = "/v1/registry",
    request_body(content = RegistryBody, content_type = "application/json"),
    responses((status = 200, description = "what the load registered and changed", body = RegistryLoaded), Refusals),
    security(("bearer" = [])))]
pub(super) async fn registry(State(s): S, c: Caller, body: Bytes) -> Answer {
    let body = text(body)?;
    c.may(Need::Administer)?;
    let v = object(&body)?;
    let merchants = field(&v, "merchants")?.to_string();
    let intermediaries = optional(&v, "intermediaries")?.map(str::to_string);
    json(
        s.write(move |r| {
            r.load_registry(
                Named {
                    name: "merchants",
                    text: &merchants,
                },
                intermediaries.as_deref().map(|i| Named {
                    name: "intermediaries",
                    text: i,
                }),
            )
        })
        .await?,
    )
}

#[utoipa::path(post, path = "/v1/recon/{date}/resolve",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the business date of the break")),
    request_body(content = ResolveBody, content_type = "application/json"),
    responses((status = 200, description = "SPEC §14: what `recon resolve --format json` prints", body = ResolutionView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn resolve(State(s): S, c: Caller, Path(d): Path<String>, body: Bytes) -> Answer {
    let body = text(body)?;
    let operator = c.may(Need::Operate)?.to_string();
    let d = date(&d, "date")?;
    let v = object(&body)?;
    let txn_type = match field(&v, "txn_type")? {
        "sale" => ReconType::Sale,
        "refund" => ReconType::Refund,
        other => {
            return Err(ApiError::bad_request(format!(
                "txn_type: {other:?} is not sale or refund"
            )))
        }
    };
    let decision = Decision::parse(field(&v, "decision")?).ok_or_else(|| {
        ApiError::bad_request(format!(
            "decision: {:?} is not ledger or channel",
            v["decision"]
        ))
    })?;
    let key = MatchKey {
        terminal_id: field(&v, "terminal_id")?.into(),
        rrn: field(&v, "rrn")?.into(),
        txn_type,
    };
    let remark = field(&v, "remark")?.to_string();
    json(
        s.write(move |r| {
            r.resolve_break(&Resolve {
                date: d,
                key,
                decision,
                operator: &operator,
                remark: &remark,
            })
        })
        .await?,
    )
}

/// `payout prepare`: the token prepares.
#[utoipa::path(post, path = "/v1/payouts/{date}/prepare",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the payout date")),
    responses((status = 200, description = "SPEC §13: the batch", body = PayoutView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn payout_prepare(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    let by = c.may(Need::Operate)?.to_string();
    let d = date(&d, "date")?;
    json(s.write(move |r| r.prepare_payout(d, &by)).await?)
}

/// `payout approve`: maker-checker, another token than the preparer's.
#[utoipa::path(post, path = "/v1/payouts/{date}/approve",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the payout date")),
    responses((status = 200, description = "SPEC §13: the batch, approved", body = PayoutView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn payout_approve(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    let by = c.may(Need::Approve)?.to_string();
    let d = date(&d, "date")?;
    json(s.write(move |r| r.approve_payout(d, &by)).await?)
}

/// `payout export`: answers the bank's CSV itself (what the command
/// writes to `--out`).
#[utoipa::path(post, path = "/v1/payouts/{date}/export",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the payout date")),
    responses((status = 200, description = "SPEC §13: the bank's CSV", body = BankCsv, content_type = "text/csv"), Refusals),
    security(("bearer" = [])))]
pub(super) async fn payout_export(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    let by = c.may(Need::Operate)?.to_string();
    let d = date(&d, "date")?;
    let csv = s
        .write(move |r| {
            let mut csv = String::new();
            r.export_payout(d, Some(&by), |c| {
                csv = c.to_string();
                Ok(())
            })?;
            Ok(csv)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

/// `payout result`: the bank's return file.
#[utoipa::path(post, path = "/v1/payouts/{date}/result",
    params(("date" = NaiveDate, Path, example = "2026-11-20", description = "the payout date")),
    request_body(content = String, content_type = "text/csv", description = "the bank's return file (SPEC §13)"),
    responses((status = 200, description = "SPEC §13: the lines settled and the bad lines", body = BankResultView), Refusals),
    security(("bearer" = [])))]
pub(super) async fn payout_result(
    State(s): S,
    c: Caller,
    Path(d): Path<String>,
    body: Bytes,
) -> Answer {
    let body = text(body)?;
    let by = c.may(Need::Operate)?.to_string();
    let d = date(&d, "date")?;
    json(
        s.write(move |r| {
            r.record_bank_result(
                d,
                Named {
                    name: "request",
                    text: &body,
                },
                Some(&by),
            )
        })
        .await?,
    )
}
