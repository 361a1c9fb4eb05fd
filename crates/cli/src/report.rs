//! Report formatting: `json` (stdout alone, SPEC §7/§11 shapes), `table`
//! (for people), `csv` (for spreadsheets).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clearing_core::settlement::{RiskReport, SettlementReport};
use clearing_producer::IngestSummary;

use crate::app::Format;

pub fn ingest_summary(s: &IngestSummary, format: Format, out: &mut impl Write) -> Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(s)?)?,
        Format::Table => {
            let reasons: Vec<String> = s.rejected.iter().map(|(r, n)| format!("{r} {n}")).collect();
            write!(
                out,
                "accepted {}, duplicates {}, rejected {}",
                s.accepted,
                s.duplicates,
                s.rejected_total()
            )?;
            if reasons.is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, " ({})", reasons.join(", "))?;
            }
            for r in &s.first_rejects {
                let field = r.field.map(|f| format!(" ({f})")).unwrap_or_default();
                writeln!(
                    out,
                    "  line {}: {}{field}: {}",
                    r.line,
                    r.reason.as_str(),
                    r.detail
                )?;
            }
            let listed = s.first_rejects.len() as u64;
            if listed > 0 && s.rejected_total() > listed {
                writeln!(
                    out,
                    "  … and {} more rejected lines; every one is on the rejected topic",
                    s.rejected_total() - listed
                )?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["outcome", "count"])?;
            w.write_record(["accepted", &s.accepted.to_string()])?;
            w.write_record(["duplicates", &s.duplicates.to_string()])?;
            for (r, n) in &s.rejected {
                w.write_record([&format!("rejected:{r}"), &n.to_string()])?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

pub fn projected(
    events: u64,
    positions: &BTreeMap<u32, u64>,
    redelivered: u64,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    let pos: BTreeMap<String, u64> = positions.iter().map(|(p, o)| (p.to_string(), *o)).collect();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"events_applied": events, "redelivered_skipped": redelivered, "positions": pos})
        )?,
        _ => {
            let at: Vec<String> = positions.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            writeln!(
                out,
                "projected {events} events ({redelivered} redelivered, skipped); next positions {}",
                at.join(" ")
            )?
        }
    }
    Ok(())
}

pub fn digest(
    digest: &str,
    positions: &BTreeMap<u32, u64>,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    match format {
        Format::Json => {
            let pos: BTreeMap<String, u64> =
                positions.iter().map(|(p, o)| (p.to_string(), *o)).collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "digest": digest,
                    "positions": pos,
                    "log_position": crate::replay::position_list(positions),
                })
            )?
        }
        _ => writeln!(out, "{digest}")?,
    }
    Ok(())
}

pub fn settlement(r: &SettlementReport, format: Format, out: &mut impl Write) -> Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(r)?)?,
        Format::Csv => {
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
        }
        Format::Table => {
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
                        clearing_core::registry::Clearing::FirstParty => "一清",
                        clearing_core::registry::Clearing::SecondParty => "二清",
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
        }
    }
    Ok(())
}

pub fn risk(r: &RiskReport, format: Format, out: &mut impl Write) -> Result<()> {
    let flags = |f: &[clearing_core::risk::RiskFlag]| {
        f.iter().map(|x| x.as_str()).collect::<Vec<_>>().join("+")
    };
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(r)?)?,
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

/// The SPEC §11 reconciliation JSON.
pub fn recon_json(r: &clearing_recon::Report) -> serde_json::Value {
    use serde_json::json;
    let counts: serde_json::Map<String, serde_json::Value> = r
        .counts
        .iter()
        .map(|(c, n)| (c.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "business_date": r.business_date.to_string(),
        "counts": counts,
        "breaks": r.breaks.iter().map(|b| json!({
            "category": b.category.as_str(),
            "terminal_id": b.key.terminal_id,
            "rrn": b.key.rrn,
            "txn_type": b.key.txn_type.as_str(),
        })).collect::<Vec<_>>(),
        "held": r.held.iter().map(|h| json!({
            "terminal_id": h.key.terminal_id,
            "rrn": h.key.rrn,
            "txn_type": h.key.txn_type.as_str(),
        })).collect::<Vec<_>>(),
    })
}

fn money(f: Option<clearing_core::Fen>) -> String {
    f.map(|f| f.to_string()).unwrap_or_else(|| "-".to_string())
}

pub fn recon(r: &clearing_recon::Report, format: Format, out: &mut impl Write) -> Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&recon_json(r))?)?,
        Format::Csv => {
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
            ])?;
            for b in &r.breaks {
                w.write_record([
                    r.business_date.to_string(),
                    b.category.as_str().to_string(),
                    b.merchant_id.clone().unwrap_or_default(),
                    b.key.terminal_id.clone(),
                    b.key.rrn.clone(),
                    b.key.txn_type.as_str().to_string(),
                    b.txn_id.clone().unwrap_or_default(),
                    b.line.map(|l| l.to_string()).unwrap_or_default(),
                    b.channel_amount.map(|f| f.to_string()).unwrap_or_default(),
                    b.ledger_amount.map(|f| f.to_string()).unwrap_or_default(),
                    b.channel_fee.map(|f| f.to_string()).unwrap_or_default(),
                    b.ledger_fee.map(|f| f.to_string()).unwrap_or_default(),
                    b.ledger_status
                        .map(|s| format!("{s:?}").to_lowercase())
                        .unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
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
                writeln!(
                    out,
                    "  {:<16} {:<10} {:<14} {:<7} {:>12} {:>12} {:>9} {:>9}",
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
        }
    }
    Ok(())
}

pub fn stories(
    query: &str,
    stories: &[crate::dispute::Story],
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    if format == Format::Json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"query": query, "transactions": stories})
        )?;
        return Ok(());
    }
    for (i, s) in stories.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} {} {} — merchant {}, terminal {}, rrn {}",
            s.txn_type.as_str(),
            s.txn_id,
            match s.result {
                clearing_core::TxnResult::Approved => "approved".to_string(),
                clearing_core::TxnResult::Declined => format!(
                    "DECLINED ({})",
                    s.decline_code.as_deref().unwrap_or("no decline code")
                ),
            },
            s.merchant_id,
            s.terminal_id,
            s.rrn
        )?;
        writeln!(out, "  amount {}  fee {}", s.amount, s.fee)?;
        if let Some(r) = &s.fee_rule {
            writeln!(
                out,
                "  fee rule: plan {} channel {} rate {}{} (fee schedule v{})",
                r.plan,
                r.channel.as_str(),
                r.rate,
                r.cap.map(|c| format!(" cap {c}")).unwrap_or_default(),
                r.schedule_version
            )?;
        }
        let st = &s.settlement;
        writeln!(
            out,
            "  settlement: {} — business date {}{}{}; refunded {} (fee back {}); net {}",
            st.status,
            st.business_date,
            st.payout_date
                .map(|d| format!(", payout {d}"))
                .unwrap_or_default(),
            match (&st.clearing, &st.intermediary_id) {
                (Some(c), Some(i)) => format!(", {} via {i}", c.as_str()),
                (Some(c), None) => format!(", {}", c.as_str()),
                _ => String::new(),
            },
            st.refunded_amount,
            st.refunded_fee,
            st.net
        )?;
        for r in &s.reconciliation {
            writeln!(
                out,
                "  reconciliation of {} {}: {}{}",
                r.txn_type.as_str(),
                r.txn_id,
                r.category,
                r.run_date
                    .map(|d| format!(" (run of {d})"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(out, "  events, in log order:")?;
        for e in &s.events {
            writeln!(
                out,
                "    {:<10} {}  {:<20} {}",
                e.position, e.recorded_at, e.type_name, e.event_id
            )?;
            if let Some(r) = &e.registry {
                writeln!(
                    out,
                    "               registry then: v{} ({} at {}) {} plan {} {}{}",
                    r.version,
                    r.value.name,
                    r.position,
                    r.value.clearing.as_str(),
                    r.value.fee_plan,
                    format!("{:?}", r.value.settlement_cycle),
                    r.value
                        .intermediary_id
                        .as_deref()
                        .map(|i| format!(" via {i}"))
                        .unwrap_or_default()
                )?;
            }
            if let Some(t) = e.txn() {
                if !t.flags.is_empty() {
                    let flags: Vec<String> = t
                        .flags
                        .iter()
                        .map(|f| serde_json::to_string(f).unwrap_or_default())
                        .collect();
                    writeln!(out, "               flags: {}", flags.join(", "))?;
                }
                for p in t.entry.postings.iter() {
                    writeln!(out, "               {:<56} {:>14}", p.account, p.amount)?;
                }
                for p in t.entry.sub_ledger.iter() {
                    writeln!(
                        out,
                        "               {:<56} {:>14}",
                        format!("[{}]", p.account),
                        p.amount
                    )?;
                }
            }
        }
    }
    Ok(())
}

pub fn statement(
    s: &crate::dispute::Statement,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(s)?)?,
        Format::Csv => {
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
                    l.position.clone(),
                    l.recorded_at.clone(),
                    l.txn_id.clone(),
                    l.txn_type.as_str().to_string(),
                    format!("{:?}", l.result).to_lowercase(),
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
        Format::Table => {
            writeln!(
                out,
                "statement of merchant {} for business date {}{}",
                s.merchant_id,
                s.business_date,
                s.as_of
                    .as_deref()
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
                    format!("{:?}", l.result).to_lowercase(),
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
    }
    Ok(())
}
