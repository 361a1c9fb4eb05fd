//! A transaction's story (SPEC §9): `txn show`.

use std::io::Write;

use anyhow::Result;
use clearing_app::core::TxnResult;
use clearing_app::dispute::story::{StoriesView, Story};
use clearing_app::dispute::LoggedEvent;

use super::{json, Format};

pub fn stories(view: &StoriesView, format: Format, out: &mut dyn Write) -> Result<()> {
    if format == Format::Json {
        return json(view, out);
    }
    for (i, s) in view.transactions.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        story(s, out)?;
    }
    Ok(())
}

fn story(s: &Story, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{} {} {} — merchant {}, terminal {}, rrn {}",
        s.txn_type.as_str(),
        s.txn_id,
        match s.result {
            TxnResult::Approved => "approved".to_string(),
            TxnResult::Declined => format!(
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
        logged_event(e, out)?;
    }
    Ok(())
}

/// One event of a story: where and when, the registry then, flags and postings.
fn logged_event(e: &LoggedEvent, out: &mut dyn Write) -> Result<()> {
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
            r.recorded.value.name,
            r.recorded.position,
            r.recorded.value.clearing.as_str(),
            r.recorded.value.fee_plan,
            r.recorded.value.settlement_cycle.as_str(),
            r.recorded
                .value
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
    Ok(())
}
