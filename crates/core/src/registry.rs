//! Reference data: merchants, intermediaries, terminal bindings, the fee
//! schedule and calendar, as the log has recorded them (SPEC §3).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::calendar::{Calendar, SettlementCycle};
use crate::fees::FeeSchedule;

crate::wire_enum! {
    /// 一清 or 二清.
    pub enum Clearing {
        /// 一清: the acquirer settles straight to the merchant's own account.
        FirstParty = "first_party",
        /// 二清: funds go to an intermediary, which owes them to the merchant.
        SecondParty = "second_party",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Merchant {
    pub merchant_id: String,
    pub name: String,
    pub mcc: String,
    pub clearing: Clearing,
    pub intermediary_id: Option<String>,
    pub settlement_cycle: SettlementCycle,
    pub fee_plan: String,
    pub terminals: Vec<String>,
    pub settlement_account: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Intermediary {
    pub intermediary_id: String,
    pub name: String,
    pub settlement_account: String,
}

/// A fee schedule with the version number the log gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionedFees {
    pub version: u32,
    pub schedule: FeeSchedule,
    pub calendar: Calendar,
}

/// A registry entry with its version (1 = first registration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Versioned<T> {
    pub version: u32,
    pub value: T,
}

/// Everything ingest needs to know about the world besides transactions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reference {
    pub merchants: BTreeMap<String, Versioned<Merchant>>,
    pub intermediaries: BTreeMap<String, Versioned<Intermediary>>,
    pub fees: Option<VersionedFees>,
    /// terminal id → merchant id; derived from `merchants`, rebuilt on load.
    #[serde(skip)]
    pub terminals: HashMap<String, String>,
}

impl Reference {
    /// The business-day cutoff of the fee schedule in force, once one is
    /// recorded.
    pub fn cutoff(&self) -> Option<chrono::NaiveTime> {
        self.fees.as_ref().map(|f| f.schedule.cutoff)
    }

    pub fn merchant(&self, id: &str) -> Option<&Merchant> {
        self.merchants.get(id).map(|v| &v.value)
    }

    pub fn terminal_owner(&self, terminal_id: &str) -> Option<&str> {
        self.terminals.get(terminal_id).map(String::as_str)
    }

    /// Rebuilds derived indexes after deserialising a snapshot.
    pub fn reindex(&mut self) {
        self.terminals = self
            .merchants
            .values()
            .flat_map(|m| {
                m.value
                    .terminals
                    .iter()
                    .map(|t| (t.clone(), m.value.merchant_id.clone()))
            })
            .collect();
    }

    pub fn put_merchant(&mut self, version: u32, merchant: Merchant) {
        if let Some(old) = self.merchants.get(&merchant.merchant_id) {
            for t in &old.value.terminals {
                self.terminals.remove(t);
            }
        }
        for t in &merchant.terminals {
            self.terminals
                .insert(t.clone(), merchant.merchant_id.clone());
        }
        self.merchants.insert(
            merchant.merchant_id.clone(),
            Versioned {
                version,
                value: merchant,
            },
        );
    }

    pub fn put_intermediary(&mut self, version: u32, i: Intermediary) {
        self.intermediaries
            .insert(i.intermediary_id.clone(), Versioned { version, value: i });
    }
}

/// A reference-data line that cannot be accepted: names line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub field: String,
    pub reason: String,
}

fn line_err(line: usize, field: &str, reason: impl Into<String>) -> LineError {
    LineError {
        line,
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn object(line_no: usize, text: &str) -> Result<Map<String, Value>, LineError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(line_err(line_no, "(line)", "not a JSON object")),
        Err(e) => Err(line_err(line_no, "(line)", format!("invalid JSON: {e}"))),
    }
}

/// A required identifier: what `ingest::is_identifier` accepts, so that
/// transactions can name it.
fn req_id(obj: &Map<String, Value>, line: usize, field: &str) -> Result<String, LineError> {
    let s = req_str(obj, line, field)?;
    if !crate::ingest::is_identifier(&s) {
        return Err(line_err(
            line,
            field,
            format!(
                "{s:?} must be 1 to {} ASCII letters, digits or - _ . : /",
                crate::ingest::ID_CHARS_MAX
            ),
        ));
    }
    Ok(s)
}

/// The longest name or account accepted in the registry.
pub const REGISTRY_TEXT_CHARS_MAX: usize = 128;

/// A required text: at most `REGISTRY_TEXT_CHARS_MAX` characters, no
/// control characters (it is printed in reports and payout files).
fn req_text(obj: &Map<String, Value>, line: usize, field: &str) -> Result<String, LineError> {
    let s = req_str(obj, line, field)?;
    if s.chars().count() > REGISTRY_TEXT_CHARS_MAX || s.chars().any(char::is_control) {
        return Err(line_err(
            line,
            field,
            format!("must be at most {REGISTRY_TEXT_CHARS_MAX} characters, none of them control characters"),
        ));
    }
    Ok(s)
}

fn req_str(obj: &Map<String, Value>, line: usize, field: &str) -> Result<String, LineError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(line_err(line, field, "missing")),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(line_err(line, field, "empty")),
        Some(other) => Err(line_err(
            line,
            field,
            format!("must be a string, got {other}"),
        )),
    }
}

fn check_known_fields(
    obj: &Map<String, Value>,
    line: usize,
    known: &[&str],
) -> Result<(), LineError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(line_err(
            line,
            k,
            format!("unknown field (expected one of {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

const MERCHANT_FIELDS: &[&str] = &[
    "merchant_id",
    "name",
    "mcc",
    "clearing",
    "intermediary_id",
    "settlement_cycle",
    "fee_plan",
    "terminals",
    "settlement_account",
];

/// Parses one `merchants.jsonl` line.
pub fn parse_merchant(line: usize, text: &str) -> Result<Merchant, LineError> {
    let obj = object(line, text)?;
    check_known_fields(&obj, line, MERCHANT_FIELDS)?;
    let mcc = req_str(&obj, line, "mcc")?;
    if mcc.len() != 4 || !mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(line_err(
            line,
            "mcc",
            format!("{mcc:?} is not a 4-digit MCC"),
        ));
    }
    let clearing_text = req_str(&obj, line, "clearing")?;
    let clearing = Clearing::parse(&clearing_text).ok_or_else(|| {
        line_err(
            line,
            "clearing",
            format!("{clearing_text:?} is not first_party or second_party"),
        )
    })?;
    let intermediary_id = match obj.get("intermediary_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if crate::ingest::is_identifier(s) => Some(s.clone()),
        Some(other) => {
            return Err(line_err(
                line,
                "intermediary_id",
                format!(
                "must be an identifier (ASCII letters, digits or - _ . : /) or null, got {other}"
            ),
            ))
        }
    };
    match (clearing, &intermediary_id) {
        (Clearing::SecondParty, None) => {
            return Err(line_err(
                line,
                "intermediary_id",
                "required for second_party clearing",
            ))
        }
        (Clearing::FirstParty, Some(_)) => {
            return Err(line_err(
                line,
                "intermediary_id",
                "must be null for first_party clearing",
            ))
        }
        _ => {}
    }
    let cycle_text = req_str(&obj, line, "settlement_cycle")?;
    let settlement_cycle = SettlementCycle::parse(&cycle_text).ok_or_else(|| {
        line_err(
            line,
            "settlement_cycle",
            format!("{cycle_text:?} is not T1 or D0"),
        )
    })?;
    let terminals = match obj.get("terminals") {
        None | Some(Value::Null) => {
            return Err(line_err(line, "terminals", "missing (use [] for none)"))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) if crate::ingest::is_identifier(s) => Ok(s.clone()),
                other => Err(line_err(
                    line,
                    "terminals",
                    format!("terminal ids must be identifiers (ASCII letters, digits or - _ . : /), got {other}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(line_err(
                line,
                "terminals",
                format!("must be an array, got {other}"),
            ))
        }
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = terminals.iter().find(|t| !seen.insert(t.as_str())) {
        return Err(line_err(
            line,
            "terminals",
            format!("terminal {dup} listed twice"),
        ));
    }
    Ok(Merchant {
        merchant_id: req_id(&obj, line, "merchant_id")?,
        name: req_text(&obj, line, "name")?,
        mcc,
        clearing,
        intermediary_id,
        settlement_cycle,
        fee_plan: req_id(&obj, line, "fee_plan")?,
        terminals,
        settlement_account: req_text(&obj, line, "settlement_account")?,
    })
}

/// Parses one `intermediaries.jsonl` line.
pub fn parse_intermediary(line: usize, text: &str) -> Result<Intermediary, LineError> {
    let obj = object(line, text)?;
    check_known_fields(
        &obj,
        line,
        &["intermediary_id", "name", "settlement_account"],
    )?;
    Ok(Intermediary {
        intermediary_id: req_id(&obj, line, "intermediary_id")?,
        name: req_text(&obj, line, "name")?,
        settlement_account: req_text(&obj, line, "settlement_account")?,
    })
}

/// What a registry load changes, in the order it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryChange {
    IntermediaryRegistered(Versioned<Intermediary>),
    IntermediaryUpdated(Versioned<Intermediary>),
    MerchantRegistered(Versioned<Merchant>),
    MerchantUpdated(Versioned<Merchant>),
}

/// Which file of a registry load a line error belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} {error}")]
pub struct RegistryLoadError {
    pub file: &'static str,
    pub error: LineError,
}

/// Decides the changes of a registry load against the current reference
/// data. The load is all or nothing: any bad line refuses the whole load,
/// because a half-applied registry would misroute money.
///
/// Lines are `(line_number, text)`; blank lines are the caller's to skip.
pub fn plan_registry_load(
    current: &Reference,
    merchants: &[(usize, String)],
    intermediaries: &[(usize, String)],
) -> Result<Vec<RegistryChange>, RegistryLoadError> {
    let mut next = current.clone();
    let mut changes = plan_intermediaries(&mut next, intermediaries)?;
    let lines = plan_merchants(current, &mut next, merchants, &mut changes)?;
    check_terminal_bindings(&next, &lines)?;
    Ok(changes)
}

fn merchants_err(error: LineError) -> RegistryLoadError {
    RegistryLoadError {
        file: "merchants",
        error,
    }
}

/// The intermediaries' changes, applied to `next`.
fn plan_intermediaries(
    next: &mut Reference,
    intermediaries: &[(usize, String)],
) -> Result<Vec<RegistryChange>, RegistryLoadError> {
    let i_err = |error| RegistryLoadError {
        file: "intermediaries",
        error,
    };
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, text) in intermediaries {
        let i = parse_intermediary(*line, text).map_err(i_err)?;
        if !seen.insert(i.intermediary_id.clone()) {
            return Err(i_err(line_err(
                *line,
                "intermediary_id",
                format!("{} appears twice in the file", i.intermediary_id),
            )));
        }
        match next.intermediaries.get(&i.intermediary_id) {
            Some(old) if old.value == i => {}
            Some(old) => {
                let v = Versioned {
                    version: old.version + 1,
                    value: i,
                };
                next.put_intermediary(v.version, v.value.clone());
                changes.push(RegistryChange::IntermediaryUpdated(v));
            }
            None => {
                next.put_intermediary(1, i.clone());
                changes.push(RegistryChange::IntermediaryRegistered(Versioned {
                    version: 1,
                    value: i,
                }));
            }
        }
    }
    Ok(changes)
}

/// The merchants' changes, applied to `next` and added to `changes`.
/// Returns the line of each merchant of the file.
fn plan_merchants(
    current: &Reference,
    next: &mut Reference,
    merchants: &[(usize, String)],
    changes: &mut Vec<RegistryChange>,
) -> Result<HashMap<String, usize>, RegistryLoadError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, text) in merchants {
        let m = parse_merchant(*line, text).map_err(merchants_err)?;
        if let Some(first) = seen.insert(m.merchant_id.clone(), *line) {
            return Err(merchants_err(line_err(
                *line,
                "merchant_id",
                format!("{} already appears on line {first}", m.merchant_id),
            )));
        }
        check_merchant_refs(current, next, *line, &m)?;
        match next.merchants.get(&m.merchant_id) {
            Some(old) if old.value == m => {}
            Some(old) => {
                let v = Versioned {
                    version: old.version + 1,
                    value: m,
                };
                next.put_merchant(v.version, v.value.clone());
                changes.push(RegistryChange::MerchantUpdated(v));
            }
            None => {
                next.put_merchant(1, m.clone());
                changes.push(RegistryChange::MerchantRegistered(Versioned {
                    version: 1,
                    value: m,
                }));
            }
        }
    }
    Ok(seen)
}

/// A merchant's intermediary must be registered, and its fee plan one of
/// the recorded schedule's.
fn check_merchant_refs(
    current: &Reference,
    next: &Reference,
    line: usize,
    m: &Merchant,
) -> Result<(), RegistryLoadError> {
    if let Some(iid) = &m.intermediary_id {
        if !next.intermediaries.contains_key(iid) {
            return Err(merchants_err(line_err(
                line,
                "intermediary_id",
                format!("{iid} is not a registered intermediary"),
            )));
        }
    }
    if let Some(fees) = &current.fees {
        if !fees.schedule.plans.contains_key(&m.fee_plan) {
            return Err(merchants_err(line_err(
                line,
                "fee_plan",
                format!(
                    "{:?} is not a plan of the recorded fee schedule",
                    m.fee_plan
                ),
            )));
        }
    }
    Ok(())
}

/// A terminal is bound to at most one merchant, judged on the registry as
/// it will stand after the load (a terminal may move between merchants
/// that are both updated in the same file).
fn check_terminal_bindings(
    next: &Reference,
    lines: &HashMap<String, usize>,
) -> Result<(), RegistryLoadError> {
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for m in next.merchants.values() {
        for t in &m.value.terminals {
            if let Some(other) = owners.insert(t, &m.value.merchant_id) {
                let line = lines
                    .get(&m.value.merchant_id)
                    .or_else(|| lines.get(other))
                    .copied()
                    .unwrap_or(0);
                return Err(merchants_err(line_err(
                    line,
                    "terminals",
                    format!(
                        "terminal {t} would be bound to both {other} and {}",
                        m.value.merchant_id
                    ),
                )));
            }
        }
    }
    Ok(())
}
