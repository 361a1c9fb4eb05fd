//! Risk flags: 跳码 (MCC jumping) and 跳商户 (terminal/merchant jumping),
//! SPEC §6. Flagged transactions still clear; the flag makes them visible.

use crate::registry::Reference;

crate::wire_enum! {
    pub enum RiskFlag {
        /// The terminal is not registered at all.
        TerminalUnbound = "terminal_unbound",
        /// The terminal is bound to another merchant (跳商户).
        TerminalMerchantMismatch = "terminal_merchant_mismatch",
        /// The transaction's MCC differs from the merchant's registered MCC
        /// (跳码/套码).
        MccMismatch = "mcc_mismatch",
    }
}

/// The flags of a record, in the order SPEC §6 lists them.
pub fn flags(
    reference: &Reference,
    merchant_id: &str,
    terminal_id: &str,
    mcc: Option<&str>,
) -> Vec<RiskFlag> {
    let mut out = Vec::new();
    match reference.terminal_owner(terminal_id) {
        None => out.push(RiskFlag::TerminalUnbound),
        Some(owner) if owner != merchant_id => out.push(RiskFlag::TerminalMerchantMismatch),
        Some(_) => {}
    }
    if let (Some(mcc), Some(m)) = (mcc, reference.merchant(merchant_id)) {
        if mcc != m.mcc {
            out.push(RiskFlag::MccMismatch);
        }
    }
    out
}
