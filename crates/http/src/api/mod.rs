//! The `/v1` routes of SPEC §12: each checks the token's role, parses its
//! path and body (400 naming the field), and calls the use case whose
//! command prints the same JSON. Reads are in `reads`, changes in
//! `writes`; `doc` gathers their OpenAPI document.

mod doc;
mod reads;
mod writes;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
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
        .route("/v1/settlement/{date}", get(reads::settlement))
        .route("/v1/risk/{date}", get(reads::risk))
        .route("/v1/txn/{id}", get(reads::txn))
        .route("/v1/merchants/{id}/statement/{date}", get(reads::statement))
        .route("/v1/digest", get(reads::digest))
        .route("/v1/transactions", post(writes::transactions))
        .route(
            "/v1/recon/{date}",
            post(writes::recon).get(reads::recon_latest),
        )
        .route("/v1/fees", post(writes::fees))
        .route("/v1/registry", post(writes::registry))
        .route("/v1/recon/{date}/resolve", post(writes::resolve))
        .route("/v1/adjustments/{date}", get(reads::adjustments))
        .route("/v1/payouts/{date}", get(reads::payout))
        .route("/v1/payouts/{date}/prepare", post(writes::payout_prepare))
        .route("/v1/payouts/{date}/approve", post(writes::payout_approve))
        .route("/v1/payouts/{date}/export", post(writes::payout_export))
        .route("/v1/payouts/{date}/result", post(writes::payout_result))
        .route("/metrics", get(reads::metrics_text))
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

/// A body as text: UTF-8 or refused (axum's own refusal is not JSON).
fn text(body: axum::body::Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec()).map_err(|e| {
        ApiError::bad_request(format!(
            "body: not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
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

/// A field of a JSON body, as a string.
fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(format!("{name}: a string is required")))
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

/// The dashboard: one page from the binary, no asset from elsewhere; it
/// signs in with a token and reads the routes below.
async fn dashboard() -> Response {
    axum::response::Html(include_str!("../dashboard.html")).into_response()
}

/// `GET /v1/openapi.json`: unauthenticated, like the health routes.
async fn openapi() -> Response {
    use utoipa::OpenApi;
    Json(doc::ApiDoc::openapi()).into_response()
}
