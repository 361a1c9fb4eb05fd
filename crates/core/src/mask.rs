//! Card number masking (SPEC §4, §11): a full PAN is never stored or logged.

/// Masks an all-digit card number of 12–19 digits to its first 6 and last 4
/// digits, one `*` per hidden digit. Anything else (already masked, tokens)
/// is returned unchanged.
pub fn mask_card(card: &str) -> std::borrow::Cow<'_, str> {
    let len = card.len();
    if (12..=19).contains(&len) && card.bytes().all(|b| b.is_ascii_digit()) {
        let mut out = String::with_capacity(len);
        out.push_str(&card[..6]);
        out.extend(std::iter::repeat_n('*', len - 10));
        out.push_str(&card[len - 4..]);
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(card)
    }
}

/// Masks card numbers inside a raw input line that may not even be valid
/// JSON, for the dead-letter log: every `"card"` string value made of 12–19
/// digits is masked in place. A valid JSON object is masked by its parsed
/// `card` value as well (see `mask_raw_with`).
pub fn mask_raw_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(idx) = rest.find("\"card\"") {
        let (head, tail) = rest.split_at(idx + 6);
        out.push_str(head);
        // skip whitespace and a colon, then an opening quote
        let after = tail.trim_start();
        let Some(after_colon) = after.strip_prefix(':') else {
            rest = tail;
            continue;
        };
        let value = after_colon.trim_start();
        let Some(inner) = value.strip_prefix('"') else {
            rest = tail;
            continue;
        };
        let digits_len = inner.bytes().take_while(|b| b.is_ascii_digit()).count();
        if inner[digits_len..].starts_with('"') && (12..=19).contains(&digits_len) {
            let prefix_len = tail.len() - inner.len();
            out.push_str(&tail[..prefix_len]);
            out.push_str(&mask_card(&inner[..digits_len]));
            rest = &inner[digits_len..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Masks a raw line given the card value parsed from it: every occurrence of
/// the full number is replaced, whatever the JSON spacing around it.
pub fn mask_raw_with(line: &str, card: &str) -> String {
    let masked = mask_card(card);
    if masked == card {
        mask_raw_line(line)
    } else {
        mask_raw_line(&line.replace(card, &masked))
    }
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
        // rrn-like 12 digit values under other keys are untouched
        let rrn = r#"{"rrn":"432112345678","card":"x"}"#;
        assert_eq!(mask_raw_line(rrn), rrn);
    }
}
