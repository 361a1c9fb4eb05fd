//! `export dispute`: one self-contained JSON bundle of a transaction for
//! the other party, sealed by the SHA-256 of its content.

use chrono::NaiveDate;
use clearing_core::{Positions, Timestamp};
use clearing_log::EventLog;
use clearing_projector::Projector;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::statement::{statement, Statement};
use super::story::{stories, Story};
use crate::error::AppError;

/// The content of a dispute bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleContent {
    pub bundle: String,
    pub bundle_version: u32,
    pub generated_at: Timestamp,
    /// `txn_id` or `rrn` the bundle was asked for.
    pub query: String,
    /// The log the events were read from.
    pub source: String,
    /// The state the bundle was taken from: its digest and log position
    /// (`clearing digest` prints the same for that state).
    pub state_digest: String,
    pub log_position: Positions,
    pub transactions: Vec<Story>,
    /// The merchant's statement of each business date the transactions
    /// touch.
    pub statements: Vec<Statement>,
}

/// A dispute bundle: its content and the SHA-256 of the content's bytes as
/// written (between the first `{` of `content` and its closing `}`).
#[derive(Serialize)]
struct Bundle<'a> {
    content: &'a RawValue,
    content_sha256: String,
}

/// The bundle's bytes as the file holds them.
pub fn bundle_bytes(content: &BundleContent) -> Vec<u8> {
    let text = serde_json::to_string(content).expect("bundles serialise");
    let sha = clearing_core::hex::sha256(text.as_bytes());
    let raw = RawValue::from_string(text).expect("serde_json writes JSON");
    let mut out = serde_json::to_vec_pretty(&Bundle {
        content: &raw,
        content_sha256: sha,
    })
    .expect("bundles serialise");
    out.push(b'\n');
    out
}

/// The state a bundle is taken from.
pub struct State {
    pub digest: String,
    pub log_position: Positions,
    pub generated_at: Timestamp,
}

/// The bundle of every story of `id`, with the statements of each
/// merchant and business date they touch.
pub fn dispute_bundle(
    p: &Projector,
    log: &dyn EventLog,
    id: &str,
    state: State,
) -> Result<BundleContent, AppError> {
    let transactions = stories(p, log, id)?;
    if transactions.is_empty() {
        return Err(AppError::not_found(format!(
            "no transaction with txn_id or rrn {id:?} in the ledger"
        )));
    }
    let mut wanted: Vec<(String, NaiveDate)> = Vec::new();
    for s in &transactions {
        for e in &s.events {
            if let Some(t) = e.txn() {
                let merchant = t
                    .settlement
                    .as_ref()
                    .map(|r| r.merchant_id.clone())
                    .unwrap_or_else(|| t.merchant_id.clone());
                if !wanted.contains(&(merchant.clone(), t.business_date)) {
                    wanted.push((merchant, t.business_date));
                }
            }
        }
    }
    let statements = wanted
        .iter()
        .map(|(m, d)| statement(p, m, *d, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BundleContent {
        bundle: "clearing dispute bundle".to_string(),
        bundle_version: 1,
        generated_at: state.generated_at,
        query: id.to_string(),
        source: log.describe(),
        state_digest: state.digest,
        log_position: state.log_position,
        transactions,
        statements,
    })
}
