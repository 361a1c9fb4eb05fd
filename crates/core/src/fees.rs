//! Fee schedule: plans, per-channel rates and caps, the business-day cutoff,
//! and the fee of a sale and of a refund (SPEC §3.3, §4.2, §4.3).

use std::collections::BTreeMap;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::money::{round_half_up_to_fen, Fen, Overflow};

/// One channel's price in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelFee {
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Fen>,
}

/// A validated fee schedule, as recorded in a `FeeScheduleLoaded` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeeSchedule {
    /// Local time (UTC+08:00) from which a transaction belongs to the next
    /// business date.
    #[serde(with = "hhmm")]
    pub cutoff: NaiveTime,
    pub plans: BTreeMap<String, BTreeMap<Channel, ChannelFee>>,
}

impl FeeSchedule {
    /// The price of `channel` under `plan`, if the schedule has one.
    pub fn rule(&self, plan: &str, channel: Channel) -> Option<&ChannelFee> {
        self.plans.get(plan)?.get(&channel)
    }
}

/// Parses the business-day cutoff, `HH:MM`.
pub fn parse_cutoff(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| format!("{text:?} is not a HH:MM time"))
}

/// Parses a rate: a decimal string in `[0, 1)` such as `"0.006"`.
pub fn parse_rate(text: &str) -> Result<Decimal, String> {
    let valid_syntax = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    let rate: Decimal = if valid_syntax {
        text.parse().ok()
    } else {
        None
    }
    .ok_or_else(|| format!("{text:?} is not a decimal rate such as \"0.006\""))?;
    if rate >= Decimal::ONE {
        return Err(format!(
            "{text:?} must be below 1 (a rate, not a percentage)"
        ));
    }
    Ok(rate)
}

/// Parses a cap: an amount string such as `"20.00"`.
pub fn parse_cap(text: &str) -> Result<Fen, String> {
    Fen::parse_unsigned(text).map_err(|e| format!("{text:?}: {e}"))
}

/// The fee of a sale: `round_half_up(amount × rate)` to the fen, then capped.
pub fn sale_fee(amount: Fen, rule: &ChannelFee) -> Result<Fen, Overflow> {
    let raw = amount.to_decimal().checked_mul(rule.rate).ok_or(Overflow)?;
    let fee = round_half_up_to_fen(raw)?;
    Ok(match rule.cap {
        Some(cap) if fee > cap => cap,
        _ => fee,
    })
}

/// What a sale has already given back through refunds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefundState {
    pub sale_amount: Fen,
    pub sale_fee: Fen,
    pub refunded_amount: Fen,
    pub refunded_fee: Fen,
}

/// The fee given back by a refund of `refund` (SPEC §4.3, §11): proportional
/// and rounded half up, capped at the fee still left; the refund that
/// completes the sale gives back exactly what is left.
///
/// The caller has checked that the refund does not exceed the sale.
pub fn refund_fee(state: RefundState, refund: Fen) -> Result<Fen, Overflow> {
    let fee_left = state.sale_fee.checked_sub(state.refunded_fee)?;
    let refunded_after = state.refunded_amount.checked_add(refund)?;
    assert!(
        refunded_after <= state.sale_amount,
        "refunds exceed their sale: {refunded_after} > {}",
        state.sale_amount
    );
    if refunded_after == state.sale_amount {
        return Ok(fee_left);
    }
    let share = state
        .sale_fee
        .to_decimal()
        .checked_mul(refund.to_decimal())
        .and_then(|x| x.checked_div(state.sale_amount.to_decimal()))
        .ok_or(Overflow)?;
    let fee = round_half_up_to_fen(share)?;
    Ok(fee.min(fee_left))
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%H:%M"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M").map_err(serde::de::Error::custom)
    }
}
