//! A merchant statement: the §7 rows of a date and every record behind
//! them, each with its log position.

use std::io::Write;

use anyhow::Result;
use clearing_app::dispute::statement::Statement;

use super::{json, Format};

pub fn statement(s: &Statement, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(s, out),
        Format::Csv => statement_csv(s, out),
        Format::Table => statement_table(s, out),
    }
}

fn statement_csv(s: &Statement, out: &mut dyn Write) -> Result<()> {
    {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "position",
            "recorded_at",
            "txn_id",
            "txn_type",
            "result",
            "terminal_id",
            "rrn",
            "amount",
            "fee",
            "payout_date",
            "sales_count",
            "sales_amount",
            "refund_count",
            "refund_amount",
            "fee_change",
        ])?;
        for l in &s.lines {
            let e = l.effect.unwrap_or_default();
            w.write_record([
                l.position.to_string(),
                l.recorded_at.to_string(),
                l.txn_id.clone(),
                l.txn_type.as_str().to_string(),
                l.result.as_str().to_string(),
                l.terminal_id.clone(),
                l.rrn.clone(),
                l.amount.to_string(),
                l.fee.to_string(),
                l.payout_date.map(|d| d.to_string()).unwrap_or_default(),
                e.sales_count.to_string(),
                e.sales_amount.to_string(),
                e.refund_count.to_string(),
                e.refund_amount.to_string(),
                e.fee.to_string(),
            ])?;
        }
        w.flush()?;
    }
    Ok(())
}

fn statement_table(s: &Statement, out: &mut dyn Write) -> Result<()> {
    {
        writeln!(
            out,
            "statement of merchant {} for business date {}{}",
            s.merchant_id,
            s.business_date,
            s.as_of
                .as_ref()
                .map(|t| format!(", as known at {t}"))
                .unwrap_or_default()
        )?;
        for r in &s.rows {
            writeln!(
                out,
                "  {} payout {}: sales {} ({}), refunds {} ({}), fee {}, net {}",
                r.clearing.as_str(),
                r.payout_date,
                r.sales_count,
                r.sales_amount,
                r.refund_count,
                r.refund_amount,
                r.fee,
                r.net
            )?;
        }
        if s.rows.is_empty() {
            writeln!(out, "  nothing to settle")?;
        }
        writeln!(out, "  lines:")?;
        for l in &s.lines {
            writeln!(
                out,
                "    {:<10} {}  {:<8} {:<9} {:<22} rrn {} {:>12} fee {:>9}{}",
                l.position,
                l.recorded_at,
                l.txn_type.as_str(),
                l.result.as_str().to_string(),
                l.txn_id,
                l.rrn,
                l.amount,
                l.fee,
                if l.effect.is_some() {
                    ""
                } else {
                    "  (moves nothing)"
                }
            )?;
        }
    }
    Ok(())
}
