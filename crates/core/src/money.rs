//! Money: integer fen, parsed strictly from decimal strings, with the one
//! rounding function of the ledger.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount one transaction may carry: 10,000,000.00 CNY.
pub const AMOUNT_FEN_MAX: i64 = 1_000_000_000;
/// The smallest amount one transaction may carry: 0.01 CNY.
pub const AMOUNT_FEN_MIN: i64 = 1;

/// An amount of CNY in fen (分). Signed, because settlement nets may be
/// negative; transaction amounts are always positive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub i64);

/// Why a string is not an accepted transaction amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a decimal string like \"128.50\" (digits, at most 2 decimals, no sign, exponent or space)")]
    Malformed,
    #[error("amount must be between 0.01 and 10000000.00")]
    OutOfRange,
}

/// Arithmetic left the range of `i64` fen: a programming or data error that
/// must stop the computation rather than wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("money arithmetic overflow")]
pub struct Overflow;

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn checked_add(self, other: Fen) -> Result<Fen, Overflow> {
        self.0.checked_add(other.0).map(Fen).ok_or(Overflow)
    }

    pub fn checked_sub(self, other: Fen) -> Result<Fen, Overflow> {
        self.0.checked_sub(other.0).map(Fen).ok_or(Overflow)
    }

    pub fn checked_neg(self) -> Result<Fen, Overflow> {
        self.0.checked_neg().map(Fen).ok_or(Overflow)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Parses a transaction amount as SPEC §11 decides: a string matching
    /// `\d+(\.\d{1,2})?` with `0.01 <= v <= 10000000.00`.
    pub fn parse_amount(s: &str) -> Result<Fen, AmountError> {
        let fen = Fen::parse_unsigned(s)?;
        if !(AMOUNT_FEN_MIN..=AMOUNT_FEN_MAX).contains(&fen.0) {
            return Err(AmountError::OutOfRange);
        }
        Ok(fen)
    }

    /// Parses `\d+(\.\d{1,2})?` into fen without a range check beyond `i64`
    /// (used for configuration such as fee caps).
    pub fn parse_unsigned(s: &str) -> Result<Fen, AmountError> {
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Malformed);
        }
        let frac_fen = match frac_part {
            None => 0,
            Some(f) if (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
                let v: i64 = f.parse().map_err(|_| AmountError::Malformed)?;
                if f.len() == 1 {
                    v * 10
                } else {
                    v
                }
            }
            Some(_) => return Err(AmountError::Malformed),
        };
        // Strip leading zeros so that "000…0001" is not mistaken for a huge
        // number; anything with more than 15 significant integer digits is
        // far out of range anyway.
        let significant = int_part.trim_start_matches('0');
        if significant.len() > 15 {
            return Err(AmountError::OutOfRange);
        }
        let yuan: i64 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| AmountError::Malformed)?
        };
        yuan.checked_mul(100)
            .and_then(|v| v.checked_add(frac_fen))
            .map(Fen)
            .ok_or(AmountError::OutOfRange)
    }

    /// Parses a signed two-decimal money string as this ledger writes it
    /// (`"-12.34"`, `"0.00"`). Used when reading our own output back.
    pub fn parse_signed(s: &str) -> Result<Fen, AmountError> {
        match s.strip_prefix('-') {
            Some(rest) => Fen::parse_unsigned(rest)?
                .checked_neg()
                .map_err(|_| AmountError::OutOfRange),
            None => Fen::parse_unsigned(s),
        }
    }
}

/// The one rounding function of the ledger: half up (四舍五入) to the fen.
///
/// "Half up" means away from zero at exactly half a fen; every amount that
/// reaches it is non-negative (fees, refund fees), so this is the
/// 四舍五入 of the fee rules.
pub fn round_half_up_to_fen(yuan: Decimal) -> Result<Fen, Overflow> {
    let rounded = yuan.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let fen = rounded.checked_mul(Decimal::ONE_HUNDRED).ok_or(Overflow)?;
    // After rounding to 2 dp and scaling by 100 the value is integral.
    let fen = fen.trunc();
    i64::try_from(fen).map(Fen).map_err(|_| Overflow)
}

impl Fen {
    /// Writes `[-]YUAN.FF` into `buf` and returns the text. No allocation:
    /// every event carries several amounts, so this is on the hot path.
    fn write_text(self, buf: &mut [u8; 24]) -> &str {
        let mut abs = self.0.unsigned_abs();
        let mut i = buf.len();
        for _ in 0..2 {
            i -= 1;
            buf[i] = b'0' + (abs % 10) as u8;
            abs /= 10;
        }
        i -= 1;
        buf[i] = b'.';
        loop {
            i -= 1;
            buf[i] = b'0' + (abs % 10) as u8;
            abs /= 10;
            if abs == 0 {
                break;
            }
        }
        if self.0 < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        std::str::from_utf8(&buf[i..]).expect("ASCII digits")
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so tables line up.
        f.pad(self.write_text(&mut [0; 24]))
    }
}

impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.write_text(&mut [0; 24]))
    }
}

impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fen, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        Fen::parse_signed(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accepted_amounts() {
        assert_eq!(Fen::parse_amount("128.50"), Ok(Fen(12850)));
        assert_eq!(Fen::parse_amount("128.5"), Ok(Fen(12850)));
        assert_eq!(Fen::parse_amount("128"), Ok(Fen(12800)));
        assert_eq!(Fen::parse_amount("0.01"), Ok(Fen(1)));
        assert_eq!(Fen::parse_amount("10000000.00"), Ok(Fen(1_000_000_000)));
        assert_eq!(Fen::parse_amount("007.10"), Ok(Fen(710)));
    }

    #[test]
    fn rejects_malformed_and_out_of_range_amounts() {
        for bad in [
            "", "-1.00", "+1.00", "1e3", " 1.00", "1.00 ", "1.", ".5", "1.234", "1,00", "abc",
            "1.0a",
        ] {
            assert_eq!(
                Fen::parse_amount(bad),
                Err(AmountError::Malformed),
                "{bad:?}"
            );
        }
        for bad in ["0", "0.00", "10000000.01", "99999999999999999999"] {
            assert_eq!(
                Fen::parse_amount(bad),
                Err(AmountError::OutOfRange),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn displays_two_decimals_with_sign() {
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-1234).to_string(), "-12.34");
        assert_eq!(Fen(1_000_000_000).to_string(), "10000000.00");
        assert_eq!(Fen(i64::MIN).to_string(), "-92233720368547758.08");
        assert_eq!(
            format!("{:>8}|{:<6}|", Fen(150), Fen(-5)),
            "    1.50|-0.05 |"
        );
    }

    #[test]
    fn rounds_half_up_at_exactly_half_a_fen() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(round_half_up_to_fen(d("0.125")), Ok(Fen(13)));
        assert_eq!(round_half_up_to_fen(d("0.1249999")), Ok(Fen(12)));
        assert_eq!(round_half_up_to_fen(d("0.115")), Ok(Fen(12)));
        assert_eq!(round_half_up_to_fen(d("0.005")), Ok(Fen(1)));
        assert_eq!(round_half_up_to_fen(d("0.0049")), Ok(Fen(0)));
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), Err(Overflow));
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), Err(Overflow));
    }
}
