//! Payout batches, bank results, resolutions and adjustments (SPEC §13,
//! §14): the JSON of the SPEC, a table for people, CSV.

use std::io::Write;

use anyhow::Result;
use clearing_app::payout::{BankResultView, PayoutView};
use clearing_app::resolve::{AdjustmentsView, ResolutionView};

use super::{json, Format};

pub fn batch(v: &PayoutView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(v, out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["payout_date", "payee_type", "payee_id", "amount", "status"])?;
            for l in &v.lines {
                w.write_record([
                    v.payout_date.to_string(),
                    l.payee_type.to_string(),
                    l.payee_id.clone(),
                    l.amount.to_string(),
                    l.status.to_string(),
                ])?;
            }
            for c in &v.carried {
                w.write_record([
                    v.payout_date.to_string(),
                    c.payee_type.to_string(),
                    c.payee_id.clone(),
                    c.amount.to_string(),
                    "carried".to_string(),
                ])?;
            }
            w.flush()?;
            Ok(())
        }
        Format::Table => {
            writeln!(
                out,
                "Payout batch {} — {} (prepared by {}, approved by {})",
                v.payout_date,
                v.status,
                v.prepared_by,
                v.approved_by.as_deref().unwrap_or("-")
            )?;
            writeln!(out, "{:<12} {:<20} {:>15} status", "payee", "id", "amount")?;
            for l in &v.lines {
                writeln!(
                    out,
                    "{:<12} {:<20} {:>15} {}",
                    l.payee_type, l.payee_id, l.amount, l.status
                )?;
            }
            for c in &v.carried {
                writeln!(
                    out,
                    "{:<12} {:<20} {:>15} carried to the next batch",
                    c.payee_type, c.payee_id, c.amount
                )?;
            }
            writeln!(out, "total: {} lines, {}", v.totals.lines, v.totals.amount)?;
            Ok(())
        }
    }
}

pub fn bank_result(v: &BankResultView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(v, out),
        Format::Table | Format::Csv => {
            let how = if v.recorded {
                "recorded"
            } else {
                "already recorded: nothing changed"
            };
            writeln!(
                out,
                "bank file for {} ({how}): paid {}, failed {}, already settled {}, bad lines {}",
                v.payout_date,
                v.paid,
                v.failed,
                v.already_settled,
                v.bad_lines.len()
            )?;
            batch(&v.batch, Format::Table, out)
        }
    }
}

pub fn resolution(v: &ResolutionView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(v, out),
        Format::Table | Format::Csv => {
            let r = &v.resolution;
            write!(
                out,
                "{} {} {} {} of {}: {} by {} ({})",
                v.category,
                v.terminal_id,
                v.rrn,
                v.txn_type,
                v.business_date,
                r.decision,
                r.operator,
                r.remark
            )?;
            match (r.adjustment, v.payout_date) {
                (Some(a), Some(p)) => writeln!(out, "; adjustment {a}, paid out {p}")?,
                _ => writeln!(out, "; nothing moves")?,
            }
            Ok(())
        }
    }
}

pub fn adjustments(v: &AdjustmentsView, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(v, out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "business_date",
                "merchant_id",
                "terminal_id",
                "rrn",
                "txn_type",
                "category",
                "amount",
                "operator",
                "remark",
            ])?;
            for a in &v.adjustments {
                w.write_record([
                    v.business_date.to_string(),
                    a.merchant_id.clone(),
                    a.terminal_id.clone(),
                    a.rrn.clone(),
                    a.txn_type.to_string(),
                    a.category.to_string(),
                    a.amount.to_string(),
                    a.operator.clone(),
                    a.remark.clone(),
                ])?;
            }
            w.flush()?;
            Ok(())
        }
        Format::Table => {
            writeln!(out, "Adjustments of business date {}", v.business_date)?;
            for a in &v.adjustments {
                writeln!(
                    out,
                    "{:<16} {:<10} {:<14} {:<7} {:<20} {:>12} {} ({})",
                    a.merchant_id,
                    a.terminal_id,
                    a.rrn,
                    a.txn_type,
                    a.category,
                    a.amount,
                    a.operator,
                    a.remark
                )?;
            }
            writeln!(out, "total: {}", v.totals.amount)?;
            Ok(())
        }
    }
}
