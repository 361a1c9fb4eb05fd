//! Payment channels and transaction vocabulary.

crate::wire_enum! {
    /// The channel a transaction came through; every fee plan prices each one.
    pub enum Channel {
        DebitCard = "debit_card",
        CreditCard = "credit_card",
        Wechat = "wechat",
        Alipay = "alipay",
        UnionpayQr = "unionpay_qr",
    }
}

crate::wire_enum! {
    /// What an input record is.
    pub enum TxnType {
        Sale = "sale",
        /// 撤销: cancels a whole sale on its own business date.
        Void = "void",
        /// 冲正: cancels a whole sale on its own business date (system-initiated).
        Reversal = "reversal",
        /// 退货: returns part or all of a sale, on any later date.
        Refund = "refund",
    }
}

impl TxnType {
    /// Void, reversal and refund name the sale they act on.
    pub fn needs_original(self) -> bool {
        !matches!(self, TxnType::Sale)
    }

    pub fn cancels_sale(self) -> bool {
        matches!(self, TxnType::Void | TxnType::Reversal)
    }
}

crate::wire_enum! {
    /// The issuer's or wallet's answer.
    pub enum TxnResult {
        Approved = "approved",
        Declined = "declined",
    }
}
