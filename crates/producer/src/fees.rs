//! Reading `fees.toml` and `holidays.txt` into a validated schedule, with
//! errors that name the line and the field.

use std::collections::BTreeMap;

use clearing_core::calendar::Calendar;
use clearing_core::fees::{parse_cap, parse_cutoff, parse_rate, ChannelFee, FeeSchedule};
use clearing_core::Channel;
use serde::Deserialize;
use toml::Spanned;

use crate::InputError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFees {
    cutoff: Option<Spanned<toml::Value>>,
    plans: Option<BTreeMap<String, BTreeMap<String, RawChannelFee>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannelFee {
    rate: Option<Spanned<toml::Value>>,
    cap: Option<Spanned<toml::Value>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates a fee schedule.
pub fn parse_fees(file: &str, text: &str) -> Result<FeeSchedule, InputError> {
    let err = |span: Option<std::ops::Range<usize>>, field: &str, reason: String| InputError {
        file: file.to_string(),
        line: span.map(|s| line_of(text, s.start)),
        field: field.to_string(),
        reason,
    };
    let raw: RawFees = toml::from_str(text)
        .map_err(|e| err(e.span(), "(syntax)", e.message().trim().to_string()))?;
    let string =
        |v: &Spanned<toml::Value>, field: &str, example: &str| -> Result<String, InputError> {
            match v.get_ref() {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(err(
                    Some(v.span()),
                    field,
                    format!(
                        "must be a string such as {example}, got a {}",
                        other.type_str()
                    ),
                )),
            }
        };
    let cutoff_v = raw
        .cutoff
        .ok_or_else(|| err(None, "cutoff", "missing (e.g. cutoff = \"23:00\")".into()))?;
    let cutoff = parse_cutoff(&string(&cutoff_v, "cutoff", "\"23:00\"")?)
        .map_err(|r| err(Some(cutoff_v.span()), "cutoff", r))?;
    let raw_plans = raw.plans.unwrap_or_default();
    if raw_plans.is_empty() {
        return Err(err(
            None,
            "plans",
            "no fee plan defined ([plans.NAME])".into(),
        ));
    }
    let mut plans = BTreeMap::new();
    for (plan_name, channels) in raw_plans {
        let mut plan = BTreeMap::new();
        for (channel_name, fee) in channels {
            let field = format!("plans.{plan_name}.{channel_name}");
            // Tables carry no span of their own; their rate's line is the
            // line of the entry in the documented inline-table form.
            let span = fee.rate.as_ref().or(fee.cap.as_ref()).map(|v| v.span());
            let channel = Channel::parse(&channel_name).ok_or_else(|| {
                err(
                    span.clone(),
                    &field,
                    "unknown channel (debit_card, credit_card, wechat, alipay, unionpay_qr)".into(),
                )
            })?;
            let rate_field = format!("{field}.rate");
            let rate_v = fee
                .rate
                .ok_or_else(|| err(span.clone(), &rate_field, "missing".into()))?;
            let rate = parse_rate(&string(&rate_v, &rate_field, "\"0.006\"")?)
                .map_err(|r| err(Some(rate_v.span()), &rate_field, r))?;
            let cap = match fee.cap {
                None => None,
                Some(cap_v) => {
                    let cap_field = format!("{field}.cap");
                    Some(
                        parse_cap(&string(&cap_v, &cap_field, "\"20.00\"")?)
                            .map_err(|r| err(Some(cap_v.span()), &cap_field, r))?,
                    )
                }
            };
            plan.insert(channel, ChannelFee { rate, cap });
        }
        plans.insert(plan_name, plan);
    }
    Ok(FeeSchedule { cutoff, plans })
}

/// Parses a holiday calendar.
pub fn parse_holidays(file: &str, text: &str) -> Result<Calendar, InputError> {
    Calendar::parse(text).map_err(|(line, reason)| InputError {
        file: file.to_string(),
        line: Some(line),
        field: "date".to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"cutoff = "23:00"
[plans.standard]
debit_card  = { rate = "0.005",  cap = "20.00" }
credit_card = { rate = "0.006" }
"#;

    #[test]
    fn parses_the_documented_form() {
        let s = parse_fees("fees.toml", GOOD).unwrap();
        assert_eq!(s.cutoff.to_string(), "23:00:00");
        let debit = s.rule("standard", Channel::DebitCard).unwrap();
        assert_eq!(debit.rate.to_string(), "0.005");
        assert_eq!(debit.cap, Some(clearing_core::Fen(2000)));
    }

    #[test]
    fn bad_rate_names_line_and_field() {
        let bad = GOOD.replace("\"0.006\"", "\"6%\"");
        let e = parse_fees("fees.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert_eq!(e.field, "plans.standard.credit_card.rate");
        let float = GOOD.replace("\"0.006\"", "0.006");
        let e = parse_fees("fees.toml", &float).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(4), "plans.standard.credit_card.rate")
        );
        let pct = GOOD.replace("\"0.006\"", "\"1.5\"");
        assert!(parse_fees("fees.toml", &pct)
            .unwrap_err()
            .reason
            .contains("below 1"));
    }

    #[test]
    fn unknown_channel_and_bad_cutoff_are_named() {
        let e =
            parse_fees("fees.toml", &GOOD.replace("credit_card =", "creditcard =")).unwrap_err();
        assert_eq!(e.field, "plans.standard.creditcard");
        let e = parse_fees("fees.toml", &GOOD.replace("23:00", "25:00")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(1), "cutoff"));
    }
}
