//! What the use cases return, as `Serialize` view structs: the JSON every
//! front end prints or sends is one of these, serialised as it is.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearing_core::recon::{Category, HeldItem, ReconType};
use clearing_core::Positions;
use serde::Serialize;

/// `clearing digest --format json`: the state digest and the log position
/// it reflects, as a map and as the `--until` text that replays it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestView {
    pub digest: String,
    pub positions: BTreeMap<String, u64>,
    pub log_position: Positions,
}

impl DigestView {
    pub fn new(digest: String, positions: &Positions) -> DigestView {
        DigestView {
            digest,
            positions: positions.as_json_map(),
            log_position: positions.clone(),
        }
    }
}

/// `clearing project --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectedView {
    pub events_applied: u64,
    pub redelivered_skipped: u64,
    pub positions: BTreeMap<String, u64>,
    /// Where the projections stand (not in the JSON: `positions` says it).
    #[serde(skip)]
    pub stand: Positions,
}

/// One key of SPEC §11's reconciliation JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconKeyView {
    pub terminal_id: String,
    pub rrn: String,
    pub txn_type: ReconType,
}

/// One break of SPEC §11's reconciliation JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconBreakView {
    pub category: Category,
    #[serde(flatten)]
    pub key: ReconKeyView,
    /// How the break was resolved (SPEC §14), once it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<crate::resolve::ResolutionNote>,
}

/// SPEC §11's reconciliation JSON, exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconView {
    pub business_date: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, u64>))]
    pub counts: clearing_core::recon::Counts,
    pub breaks: Vec<ReconBreakView>,
    pub held: Vec<ReconKeyView>,
}

impl ReconView {
    pub fn of(r: &crate::ReconReport) -> ReconView {
        let key = |k: &clearing_core::recon::MatchKey| ReconKeyView {
            terminal_id: k.terminal_id.to_string(),
            rrn: k.rrn.to_string(),
            txn_type: k.txn_type,
        };
        ReconView {
            business_date: r.business_date,
            counts: r.counts.clone(),
            breaks: r
                .breaks
                .iter()
                .map(|b| ReconBreakView {
                    category: b.category,
                    key: key(&b.key),
                    resolution: r.resolutions.get(&b.key).cloned(),
                })
                .collect(),
            held: r.held.iter().map(|h: &HeldItem| key(&h.key)).collect(),
        }
    }
}
