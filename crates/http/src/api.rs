//! The `/v1` routes of SPEC §12: each checks the token's role, parses its
//! path and body (400 naming the field), and calls the use case whose
//! command prints the same JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use clearing_app::core::recon::{MatchKey, ReconType};
use clearing_app::core::resolution::Decision;
use clearing_app::core::Timestamp;
use clearing_app::resolve::Resolve;
use clearing_app::views::ReconView;
use clearing_app::{Layout, Named};
use serde::Serialize;
use serde_json::Value;

use crate::{ApiError, Need, Options, Role, Shared};

type S = State<Arc<Shared>>;
type Answer = Result<Response, ApiError>;

pub(crate) fn router(shared: Arc<Shared>, options: &Options) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/v1/settlement/{date}", get(settlement))
        .route("/v1/risk/{date}", get(risk))
        .route("/v1/txn/{id}", get(txn))
        .route("/v1/merchants/{id}/statement/{date}", get(statement))
        .route("/v1/digest", get(digest))
        .route("/v1/transactions", post(transactions))
        .route("/v1/recon/{date}", post(recon).get(recon_latest))
        .route("/v1/fees", post(fees))
        .route("/v1/registry", post(registry))
        .route("/v1/recon/{date}/resolve", post(resolve))
        .route("/v1/adjustments/{date}", get(adjustments))
        .route("/v1/payouts/{date}", get(payout))
        .route("/v1/payouts/{date}/{step}", post(payout_step))
        .route("/metrics", get(metrics_text))
        .route("/v1/openapi.json", get(openapi))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(options.body_limit_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
        .with_state(shared)
}

/// The token a request carries: who it is and what it may do.
pub(crate) struct Caller {
    name: String,
    role: Role,
}

impl Caller {
    fn may(&self, need: Need) -> Result<&str, ApiError> {
        if self.role.may(need) {
            Ok(&self.name)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the {} role may not do this", self.role.as_str()),
            ))
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Caller, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Authorization: Bearer TOKEN is required",
                )
            })?;
        let t = s
            .tokens
            .find(presented.trim())
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown token"))?;
        if !s.admit(&t.name) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("token {:?} is over its rate; try again in a minute", t.name),
            ));
        }
        Ok(Caller {
            name: t.name.clone(),
            role: t.role,
        })
    }
}

/// The view as the command's `--format json` prints it.
fn json(v: impl Serialize) -> Answer {
    Ok(Json(v).into_response())
}

fn date(s: &str, field: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("{field}: {s:?} is not a date (YYYY-MM-DD)")))
}

#[utoipa::path(get, path = "/v1/settlement/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")), responses((status = 200, description = "SPEC §7: what `report settlement --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn settlement(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.settlement(d)).await?)
}

#[utoipa::path(get, path = "/v1/risk/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")), responses((status = 200, description = "SPEC §7, §11: what `report risk --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn risk(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.risk(d)).await?)
}

#[utoipa::path(get, path = "/v1/txn/{id}", params(("id" = String, Path, description = "txn_id or rrn")), responses((status = 200, description = "SPEC §9: what `txn show --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn txn(State(s): S, c: Caller, Path(id): Path<String>) -> Answer {
    c.may(Need::Read)?;
    json(s.read(move |l| l.stories(&id)).await?)
}

#[utoipa::path(get, path = "/v1/merchants/{id}/statement/{date}", params(("id" = String, Path, description = "merchant id"), ("date" = String, Path, description = "YYYY-MM-DD"), ("as_of" = String, Query, description = "RFC 3339 time, optional")), responses((status = 200, description = "what `merchant statement --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn statement(
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

#[utoipa::path(get, path = "/v1/digest", responses((status = 200, description = "what `digest --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn digest(State(s): S, c: Caller) -> Answer {
    c.may(Need::Read)?;
    json(s.read(|l| l.digest()).await?)
}

#[utoipa::path(post, path = "/v1/transactions", request_body(content = String, description = "transaction lines, as `ingest` reads them"), responses((status = 200, description = "what `ingest --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn transactions(State(s): S, c: Caller, body: String) -> Answer {
    c.may(Need::Operate)?;
    let summary = s
        .write(move |r| r.ingest("request", body.as_bytes(), |_| {}))
        .await?;
    crate::metrics::ingested(&summary);
    json(summary)
}

#[utoipa::path(post, path = "/v1/recon/{date}", params(("date" = String, Path, description = "YYYY-MM-DD"), ("layout" = String, Query, description = "csv or unionpay-fixed")), request_body(content = String, description = "the channel clearing file"), responses((status = 200, description = "SPEC §11: what `recon --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn recon(
    State(s): S,
    c: Caller,
    Path(d): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Answer {
    c.may(Need::Operate)?;
    let d = date(&d, "date")?;
    let layout = match q.get("layout").map(String::as_str) {
        None | Some("csv") => Layout::Csv,
        Some("unionpay-fixed") => Layout::UnionpayFixed,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "layout: {other:?} is not csv or unionpay-fixed"
            )))
        }
    };
    let report = s
        .write(move |r| r.reconcile("request", body.as_bytes(), layout, d))
        .await?;
    json(ReconView::of(&report))
}

#[utoipa::path(get, path = "/v1/recon/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")), responses((status = 200, description = "the latest run of the date, as a rerun of its file prints it", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn recon_latest(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    let report = s.read(move |l| l.recon(d)).await?;
    json(ReconView::of(&report))
}

/// The dashboard: one page from the binary, no asset from elsewhere; it
/// signs in with a token and reads the routes below.
async fn dashboard() -> Response {
    axum::response::Html(include_str!("dashboard.html")).into_response()
}

/// `/metrics`: any token.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn metrics_text(State(s): S, c: Caller) -> Answer {
    c.may(Need::Read)?;
    s.read(|l| crate::metrics::ledger_gauges(l)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response())
}

/// A JSON body: an object.
fn object(body: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| ApiError::bad_request(format!("body: not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("body: a JSON object is required"));
    }
    Ok(v)
}

/// An optional string field of a JSON body.
fn optional<'a>(v: &'a Value, name: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name}: a string is required"
        ))),
    }
}

/// `{"fees": TOML, "holidays": TEXT}`: `fees load`.
#[utoipa::path(post, path = "/v1/fees", request_body(content = String, description = "a JSON object: fees (the TOML text), holidays (optional)"), responses((status = 200, description = "the fee schedule loaded", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn fees(State(s): S, c: Caller, body: String) -> Answer {
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

/// `{"merchants": JSONL, "intermediaries": JSONL}`: `registry load`.
#[utoipa::path(post, path = "/v1/registry", request_body(content = String, description = "a JSON object: merchants (JSON lines), intermediaries (optional)"), responses((status = 200, description = "the registry loaded", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn registry(State(s): S, c: Caller, body: String) -> Answer {
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

/// A field of a JSON body, as a string.
fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("{name}: a string is required")))
}

#[utoipa::path(post, path = "/v1/recon/{date}/resolve", params(("date" = String, Path, description = "YYYY-MM-DD")), request_body(content = String, description = "a JSON object: terminal_id, rrn, txn_type, decision, remark"), responses((status = 200, description = "SPEC §14: what `recon resolve --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn resolve(State(s): S, c: Caller, Path(d): Path<String>, body: String) -> Answer {
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
    let decision = match field(&v, "decision")? {
        "ledger" => Decision::Ledger,
        "channel" => Decision::Channel,
        other => {
            return Err(ApiError::bad_request(format!(
                "decision: {other:?} is not ledger or channel"
            )))
        }
    };
    let key = MatchKey {
        terminal_id: field(&v, "terminal_id")?.to_string(),
        rrn: field(&v, "rrn")?.to_string(),
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

#[utoipa::path(get, path = "/v1/adjustments/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")), responses((status = 200, description = "SPEC §14: what `report adjustments --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn adjustments(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.adjustments(d)).await?)
}

#[utoipa::path(get, path = "/v1/payouts/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")), responses((status = 200, description = "SPEC §13: what `report payout --format json` prints", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn payout(State(s): S, c: Caller, Path(d): Path<String>) -> Answer {
    c.may(Need::Read)?;
    let d = date(&d, "date")?;
    json(s.read(move |l| l.payout(d)).await?)
}

/// `prepare`, `approve` and `result` answer JSON; `export` answers the
/// bank's CSV itself (what the command writes to `--out`).
#[utoipa::path(post, path = "/v1/payouts/{date}/{step}", params(("date" = String, Path, description = "YYYY-MM-DD"), ("step" = String, Path, description = "prepare, approve, export or result")), request_body(content = String, description = "empty, or the bank return file for result"), responses((status = 200, description = "SPEC §13: the batch (prepare, approve), the bank CSV (export), the bank result (result)", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
async fn payout_step(
    State(s): S,
    c: Caller,
    Path((d, step)): Path<(String, String)>,
    body: String,
) -> Answer {
    let d = date(&d, "date")?;
    match step.as_str() {
        "prepare" => {
            let by = c.may(Need::Operate)?.to_string();
            json(s.write(move |r| r.prepare_payout(d, &by)).await?)
        }
        "approve" => {
            let by = c.may(Need::Approve)?.to_string();
            json(s.write(move |r| r.approve_payout(d, &by)).await?)
        }
        "export" => {
            let by = c.may(Need::Operate)?.to_string();
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
        "result" => {
            let by = c.may(Need::Operate)?.to_string();
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
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no payout step {other:?}: prepare, approve, export or result"),
        )),
    }
}

/// The error body of every refusal.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// One line: what is wrong, naming the field for bad input.
    error: String,
}

/// The OpenAPI 3 document of the routes above, generated from their
/// annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "clearing ledger", description = "The operators' service of SPEC §12"),
    paths(settlement, risk, txn, statement, digest, transactions, recon, recon_latest,
        metrics_text, fees, registry, resolve, adjustments, payout, payout_step),
    components(schemas(ErrorBody)),
    modifiers(&Bearer)
)]
pub(crate) struct ApiDoc;

/// `Authorization: Bearer TOKEN` on every route that takes a token.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /v1/openapi.json`: unauthenticated, like the health routes.
async fn openapi() -> Response {
    use utoipa::OpenApi;
    Json(ApiDoc::openapi()).into_response()
}
