//! A reconciliation run (SPEC §8, §11): the JSON of §11, a table of
//! counts and breaks by category, or the breaks as CSV.

use std::io::Write;

use anyhow::Result;
use clearing_app::core::Fen;
use clearing_app::views::ReconView;
use clearing_app::ReconReport;

use super::{json, Format};

fn money(f: Option<Fen>) -> String {
    f.map(|f| f.to_string()).unwrap_or_else(|| "-".to_string())
}

pub fn recon(r: &ReconReport, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => json(&ReconView::of(r), out),
        Format::Csv => recon_csv(r, out),
        Format::Table => recon_table(r, out),
    }
}

fn recon_csv(r: &ReconReport, out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "business_date",
        "category",
        "merchant_id",
        "terminal_id",
        "rrn",
        "txn_type",
        "txn_id",
        "line",
        "channel_amount",
        "ledger_amount",
        "channel_fee",
        "ledger_fee",
        "ledger_status",
        "resolution",
        "resolved_by",
    ])?;
    for b in &r.breaks {
        let resolution = r.resolutions.get(&b.key);
        w.write_record([
            r.business_date.to_string(),
            b.category.as_str().to_string(),
            b.merchant_id.clone().unwrap_or_default().into(),
            b.key.terminal_id.to_string(),
            b.key.rrn.to_string(),
            b.key.txn_type.as_str().to_string(),
            b.txn_id.clone().unwrap_or_default().into(),
            b.line.map(|l| l.to_string()).unwrap_or_default(),
            b.channel_amount.map(|f| f.to_string()).unwrap_or_default(),
            b.ledger_amount.map(|f| f.to_string()).unwrap_or_default(),
            b.channel_fee.map(|f| f.to_string()).unwrap_or_default(),
            b.ledger_fee.map(|f| f.to_string()).unwrap_or_default(),
            b.ledger_status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            resolution
                .map(|n| n.decision.to_string())
                .unwrap_or_default(),
            resolution.map(|n| n.operator.clone()).unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn recon_table(r: &ReconReport, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "Reconciliation of {} — {} ({} layout, {} lines, {} bad)",
        r.business_date, r.file, r.layout, r.lines, r.bad_lines
    )?;
    if r.already_recorded {
        writeln!(
            out,
            "(this file was already reconciled for this date: the result recorded then)"
        )?;
    }
    if r.carried_in > 0 {
        writeln!(
            out,
            "{} items held by the previous day's run were expected here",
            r.carried_in
        )?;
    }
    for (c, n) in &r.counts {
        writeln!(out, "  {:<22} {:>9}", c.as_str(), n)?;
    }
    let mut current = None;
    for b in &r.breaks {
        if current != Some(b.category) {
            current = Some(b.category);
            writeln!(out, "\n{}", b.category.as_str())?;
            writeln!(
                out,
                "  {:<16} {:<10} {:<14} {:<7} {:>12} {:>12} {:>9} {:>9}",
                "merchant", "terminal", "rrn", "type", "channel", "ledger", "ch fee", "fee"
            )?;
        }
        let resolved = match r.resolutions.get(&b.key) {
            Some(n) => format!(
                "  resolved: {} by {} ({})",
                n.decision, n.operator, n.remark
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "  {:<16} {:<10} {:<14} {:<7} {:>12} {:>12} {:>9} {:>9}{resolved}",
            b.merchant_id.as_deref().unwrap_or("-"),
            b.key.terminal_id,
            b.key.rrn,
            b.key.txn_type.as_str(),
            money(b.channel_amount),
            money(b.ledger_amount),
            money(b.channel_fee),
            money(b.ledger_fee),
        )?;
    }
    if !r.held.is_empty() {
        writeln!(out, "\nheld for the next day's file")?;
        for h in &r.held {
            writeln!(
                out,
                "  {:<16} {:<10} {:<14} {:<7} {:>12}",
                h.merchant_id,
                h.key.terminal_id,
                h.key.rrn,
                h.key.txn_type.as_str(),
                h.amount
            )?;
        }
    }
    if !r.bad.is_empty() {
        writeln!(out, "\nbad lines (first {})", r.bad.len())?;
        for b in &r.bad {
            writeln!(out, "  line {}: {} ({})", b.line, b.detail, b.field)?;
        }
    }
    Ok(())
}
