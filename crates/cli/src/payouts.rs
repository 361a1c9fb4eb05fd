//! `clearing payout …` and `clearing recon resolve`: read the arguments'
//! files, call the application layer, render what it returns.

use std::io::Write;

use anyhow::Result;
use clearing_app::core::recon::{MatchKey, ReconType};
use clearing_app::core::resolution::Decision;
use clearing_app::resolve::Resolve;
use clearing_app::{Config, Recorder};

use crate::args::{PayoutCommand, ReconCommand, ReconDecision, ReconTxnType};
use crate::commands::FileText;
use crate::render;

pub fn payout(cfg: &Config, command: PayoutCommand, out: &mut dyn Write) -> Result<()> {
    let mut r = Recorder::open(cfg.live()?)?;
    match command {
        PayoutCommand::Prepare {
            date,
            operator,
            format,
        } => render::payout::batch(&r.prepare_payout(date, &operator)?, format, out),
        PayoutCommand::Approve {
            date,
            operator,
            format,
        } => render::payout::batch(&r.approve_payout(date, &operator)?, format, out),
        PayoutCommand::Export {
            date,
            out: file,
            operator,
            format,
        } => {
            let view =
                r.export_payout(date, operator.as_deref(), |csv| std::fs::write(&file, csv))?;
            render::payout::batch(&view, format, out)
        }
        PayoutCommand::Result {
            date,
            file,
            operator,
            format,
        } => {
            let text = FileText::read(&file)?;
            let view = r.record_bank_result(date, text.named(), operator.as_deref())?;
            for b in &view.bad_lines {
                eprintln!(
                    "clearing: {}: line {}: payee_id {:?}: {}",
                    file.display(),
                    b.line,
                    b.payee_id,
                    b.reason
                );
            }
            render::payout::bank_result(&view, format, out)
        }
    }
}

pub fn resolve(cfg: &Config, command: ReconCommand, out: &mut dyn Write) -> Result<()> {
    let ReconCommand::Resolve {
        date,
        terminal,
        rrn,
        txn_type,
        decision,
        operator,
        remark,
        format,
    } = command;
    let mut r = Recorder::open(cfg.live()?)?;
    let req = Resolve {
        date,
        key: MatchKey {
            terminal_id: terminal.into(),
            rrn: rrn.into(),
            txn_type: match txn_type {
                ReconTxnType::Sale => ReconType::Sale,
                ReconTxnType::Refund => ReconType::Refund,
            },
        },
        decision: match decision {
            ReconDecision::Ledger => Decision::Ledger,
            ReconDecision::Channel => Decision::Channel,
        },
        operator: &operator,
        remark: &remark,
    };
    let view = r.resolve_break(&req)?;
    render::payout::resolution(&view, format, out)
}
