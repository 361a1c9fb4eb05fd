//! The settlement and risk reports (SPEC §7).

use std::io::Write;

use anyhow::Result;
use clearing_app::core::registry::Clearing;
use clearing_app::core::settlement::{RiskReport, SettlementReport};

use super::{json, Format};

pub fn settlement(r: &SettlementReport, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(r, out)?,
        Format::Csv => settlement_csv(r, out)?,
        Format::Table => settlement_table(r, out)?,
    }
    Ok(())
}

fn settlement_csv(r: &SettlementReport, out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "business_date",
        "merchant_id",
        "clearing",
        "intermediary_id",
        "payout_date",
        "sales_count",
        "sales_amount",
        "refund_count",
        "refund_amount",
        "fee",
        "net",
    ])?;
    for m in &r.merchants {
        w.write_record([
            r.business_date.to_string(),
            m.merchant_id.clone(),
            m.clearing.as_str().to_string(),
            m.intermediary_id.clone().unwrap_or_default(),
            m.payout_date.to_string(),
            m.sales_count.to_string(),
            m.sales_amount.to_string(),
            m.refund_count.to_string(),
            m.refund_amount.to_string(),
            m.fee.to_string(),
            m.net.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn settlement_table(r: &SettlementReport, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "Settlement for business date {} — {} merchants",
        r.business_date,
        r.merchants.len()
    )?;
    writeln!(
        out,
        "{:<16} {:<4} {:<8} {:<10} {:>6} {:>14} {:>6} {:>12} {:>10} {:>14}",
        "merchant",
        "mode",
        "via",
        "payout",
        "sales",
        "sales amount",
        "refnd",
        "refund amt",
        "fee",
        "net"
    )?;
    for m in &r.merchants {
        // 一清/二清 are two double-width characters: four columns.
        writeln!(
            out,
            "{:<16} {} {:<8} {:<10} {:>6} {:>14} {:>6} {:>12} {:>10} {:>14}",
            m.merchant_id,
            match m.clearing {
                Clearing::FirstParty => "一清",
                Clearing::SecondParty => "二清",
            },
            m.intermediary_id.as_deref().unwrap_or("-"),
            m.payout_date,
            m.sales_count,
            m.sales_amount,
            m.refund_count,
            m.refund_amount,
            m.fee,
            m.net
        )?;
    }
    let t = &r.totals;
    writeln!(
        out,
        "{:<16} {:<4} {:<8} {:<10} {:>6} {:>14} {:>6} {:>12} {:>10} {:>14}",
        "TOTAL", "", "", "", "", t.sales_amount, "", t.refund_amount, t.fee, t.net
    )?;
    Ok(())
}

pub fn risk(r: &RiskReport, format: Format, out: &mut dyn Write) -> Result<()> {
    let flags = |f: &[clearing_app::core::risk::RiskFlag]| {
        f.iter().map(|x| x.as_str()).collect::<Vec<_>>().join("+")
    };
    match format {
        Format::Json => json(r, out)?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "business_date",
                "kind",
                "txn_id_or_intermediary",
                "merchant_id_or_payout_date",
                "terminal_id",
                "flags_or_net",
            ])?;
            for f in &r.flagged {
                w.write_record([
                    &r.business_date.to_string(),
                    "flagged",
                    &f.txn_id,
                    &f.merchant_id,
                    &f.terminal_id,
                    &flags(&f.flags),
                ])?;
            }
            for e in &r.exposure {
                w.write_record([
                    &r.business_date.to_string(),
                    "exposure",
                    &e.intermediary_id,
                    &e.payout_date.to_string(),
                    "",
                    &e.net.to_string(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            writeln!(
                out,
                "Risk for business date {} — {} flagged transactions",
                r.business_date,
                r.flagged.len()
            )?;
            writeln!(
                out,
                "{:<18} {:<16} {:<10} flags",
                "txn", "merchant", "terminal"
            )?;
            for f in &r.flagged {
                writeln!(
                    out,
                    "{:<18} {:<16} {:<10} {}",
                    f.txn_id,
                    f.merchant_id,
                    f.terminal_id,
                    flags(&f.flags)
                )?;
            }
            writeln!(
                out,
                "Second-party (二清) exposure: what intermediaries hold for their merchants"
            )?;
            writeln!(out, "{:<12} {:<10} {:>14}", "intermediary", "payout", "net")?;
            for e in &r.exposure {
                writeln!(
                    out,
                    "{:<12} {:<10} {:>14}",
                    e.intermediary_id, e.payout_date, e.net
                )?;
            }
        }
    }
    Ok(())
}
