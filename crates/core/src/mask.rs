//! Card number masking (SPEC §4, §11): a full PAN is never stored, logged
//! or printed.
//!
//! A card number is 12–19 digits, possibly written with single spaces or
//! dashes between digit groups (`6222 0202 0011 2233 445`). Masked, it
//! keeps its first 6 and last 4 digits, one `*` per hidden digit.

use std::borrow::Cow;
use std::ops::RangeInclusive;

/// How many digits a card number has.
pub const PAN_DIGITS: RangeInclusive<usize> = 12..=19;

fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'-'
}

/// Masks a `card` value: a card number (digits, with or without spaces or
/// dashes between groups) becomes its masked digits, without separators.
/// Anything else (already masked, a wallet token) is returned unchanged.
pub fn mask_card(card: &str) -> Cow<'_, str> {
    let b = card.as_bytes();
    let shaped = !b.is_empty()
        && b[0].is_ascii_digit()
        && b[b.len() - 1].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || is_separator(*c))
        && !b
            .windows(2)
            .any(|w| is_separator(w[0]) && is_separator(w[1]));
    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
    if !shaped || !PAN_DIGITS.contains(&digits.len()) {
        return Cow::Borrowed(card);
    }
    let n = digits.len();
    let mut out = String::with_capacity(n);
    out.push_str(&digits[..6]);
    out.extend(std::iter::repeat_n('*', n - 10));
    out.push_str(&digits[n - 4..]);
    Cow::Owned(out)
}

/// Masks, in place, every run in `text` that looks like a card number:
/// 12–19 digits, single spaces or dashes allowed between them. The
/// separators stay where they are; hidden digits become `*`.
pub fn mask_digit_runs(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // The run: digits, and single separators followed by a digit.
        let start = i;
        let mut digits = vec![i];
        let mut j = i + 1;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                digits.push(j);
                j += 1;
            } else if is_separator(b[j]) && j + 1 < b.len() && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if PAN_DIGITS.contains(&digits.len()) {
            let o = out.get_or_insert_with(|| b.to_vec());
            for &at in &digits[6..digits.len() - 4] {
                o[at] = b'*';
            }
        }
        let _ = start;
        i = j;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(v) => Cow::Owned(String::from_utf8(v).expect("ASCII replaced by ASCII")),
    }
}

/// Masks a raw input line that did not parse, for the dead-letter log:
/// every card-like digit run is masked ("never stored or logged" wins over
/// "raw input").
pub fn mask_unparsed(line: &str) -> String {
    mask_digit_runs(line).into_owned()
}

/// Masks a raw input line for the dead-letter log: a line that is JSON
/// has the card numbers of its `"card"` strings masked in place; a line
/// that is not has every card-like digit run masked (`mask_unparsed`).
pub fn mask_raw_line(line: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok() {
        mask_card_strings(line)
    } else {
        mask_unparsed(line)
    }
}

/// Masks a raw line that parsed, given the `card` string it carried (a
/// full number, as written): every occurrence of it is masked in place,
/// whatever the JSON spacing around it, and any `"card"` string of digits
/// too.
pub fn mask_raw_with(line: &str, card: &str) -> String {
    let masked = mask_digit_runs(card);
    let line = if masked == card {
        Cow::Borrowed(line)
    } else {
        Cow::Owned(line.replace(card, &masked))
    };
    mask_raw_line(&line)
}

/// Masks every `"card"` string value of a raw line that looks like a card
/// number.
fn mask_card_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(idx) = rest.find("\"card\"") {
        let (head, tail) = rest.split_at(idx + 6);
        out.push_str(head);
        let after = tail.trim_start();
        let Some(value) = after.strip_prefix(':').map(str::trim_start) else {
            rest = tail;
            continue;
        };
        let Some(inner) = value.strip_prefix('"') else {
            rest = tail;
            continue;
        };
        let end = inner.find('"').unwrap_or(inner.len());
        let prefix_len = tail.len() - inner.len();
        out.push_str(&tail[..prefix_len]);
        out.push_str(&mask_digit_runs(&inner[..end]));
        rest = &inner[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_pans_of_12_to_19_digits() {
        assert_eq!(mask_card("6228480012341234"), "622848******1234");
        assert_eq!(mask_card("622848001234"), "622848**1234");
        assert_eq!(mask_card("6228480012345671234"), "622848*********1234");
    }

    #[test]
    fn a_pan_with_spaces_or_dashes_is_the_same_card() {
        assert_eq!(mask_card("6222 0202 0011 2233 445"), "622202*********3445");
        assert_eq!(mask_card("6222-0202-0011-2233-445"), "622202*********3445");
        assert_eq!(
            mask_card("6222  0202 0011 2233 445"),
            "6222  0202 0011 2233 445"
        );
    }

    #[test]
    fn leaves_other_values_alone() {
        assert_eq!(mask_card("622848******1234"), "622848******1234");
        assert_eq!(mask_card("62284800123"), "62284800123");
        assert_eq!(mask_card("62284800123456712345"), "62284800123456712345");
        assert_eq!(mask_card("wx-openid-abc"), "wx-openid-abc");
    }

    #[test]
    fn masks_inside_broken_json() {
        let line = r#"{"txn_id":"X","card" : "6228480012341234", "amount": 1"#;
        let masked = mask_raw_line(line);
        assert!(!masked.contains("6228480012341234"), "{masked}");
        assert!(masked.contains("622848******1234"));
        // in a line that parses, rrn-like 12 digit values under other keys
        // are untouched
        let rrn = r#"{"rrn":"432112345678","card":"x"}"#;
        assert_eq!(mask_raw_line(rrn), rrn);
    }

    #[test]
    fn masks_every_card_like_run_of_a_line_that_does_not_parse() {
        let line = r#"{"txn_id":"X","card" : "6228480012341234", "amount": 1"#;
        let masked = mask_unparsed(line);
        assert!(!masked.contains("6228480012341234"), "{masked}");
        assert!(masked.contains("622848******1234"));
        let spaced = r#"{"card": 6222 0202 0011 2233 445, oops"#;
        assert_eq!(
            mask_unparsed(spaced),
            r#"{"card": 6222 02** **** ***3 445, oops"#
        );
        // runs too short or too long to be a card stay
        assert_eq!(mask_unparsed("x 12345678901 y"), "x 12345678901 y");
        let long = "123456789012345678901";
        assert_eq!(mask_unparsed(long), long);
    }

    #[test]
    fn a_parsed_line_has_its_card_masked_wherever_it_is() {
        let line = r#"{"rrn":"432112345678","card":"6222 0202 0011 2233 445","note":"6222 0202 0011 2233 445"}"#;
        let masked = mask_raw_with(line, "6222 0202 0011 2233 445");
        assert!(!masked.contains("0011 2233"), "{masked}");
        assert!(masked.contains("432112345678"), "the rrn stays: {masked}");
    }
}
