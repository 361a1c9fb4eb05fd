//! The hash chain of each partition of the events topic (SPEC §15).
//!
//! An event's *canonical bytes* are its encoding without the chain (the
//! envelope as `Event::encode` writes it). Its *chain hash* is
//! `SHA-256(previous chain hash ‖ SHA-256(canonical bytes))`, the previous
//! hash of a partition's first record being 32 zero bytes. The event
//! carries it as the envelope's last field, `"chain":"<64 hex>"`: the
//! payload on the log is the canonical bytes with `,"chain":"…"` put
//! before their closing `}`.
//!
//! Records that carry no chain — events written before the chain existed,
//! or anything else on the topic — chain through the same formula with the
//! whole payload as their canonical bytes, so a chain runs through old
//! logs; but once a partition has a chained record, every later record
//! must carry a valid chain.

use sha2::{Digest, Sha256};

/// The chain hash before a partition's first record.
pub const GENESIS: [u8; 32] = [0; 32];

const PREFIX: &[u8] = b",\"chain\":\"";
/// `,"chain":"` + 64 hex digits + `"}`.
pub const SUFFIX_LEN: usize = PREFIX.len() + 64 + 2;

/// A record's link in the chain: the hash it carries, or, for one that
/// carries none, the SHA-256 of its payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Link {
    pub hash: [u8; 32],
    pub carried: bool,
}

impl Link {
    /// The link of a record as the log holds it.
    pub fn of(payload: &[u8]) -> Link {
        match carried(payload) {
            Some(hash) => Link {
                hash,
                carried: true,
            },
            None => Link {
                hash: Sha256::digest(payload).into(),
                carried: false,
            },
        }
    }

    /// The partition's chain hash after this record, `prev` before it.
    pub fn head_after(&self, prev: &[u8; 32]) -> [u8; 32] {
        if self.carried {
            self.hash
        } else {
            step(prev, &self.hash)
        }
    }
}

/// `SHA-256(prev ‖ digest)`.
pub fn step(prev: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(digest);
    h.finalize().into()
}

/// The SHA-256 of canonical bytes (in parallel, before the chain is
/// threaded through them in order).
pub fn digest(canonical: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical).into()
}

/// The payload of an event whose canonical bytes have `digest`, chained
/// after `prev`: the bytes with the chain put in, and the new chain hash.
pub fn seal(canonical: &[u8], digest: &[u8; 32], prev: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
    assert_eq!(
        canonical.last(),
        Some(&b'}'),
        "an event's encoding is a JSON object"
    );
    let hash = step(prev, digest);
    let mut out = Vec::with_capacity(canonical.len() + SUFFIX_LEN - 1);
    out.extend_from_slice(&canonical[..canonical.len() - 1]);
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(crate::hex::encode(&hash).as_bytes());
    out.extend_from_slice(b"\"}");
    (out, hash)
}

/// The chain hash a payload carries, when it ends with one.
pub fn carried(payload: &[u8]) -> Option<[u8; 32]> {
    let n = payload.len();
    if n < SUFFIX_LEN + 2 {
        return None;
    }
    let suffix = &payload[n - SUFFIX_LEN..];
    if !suffix.starts_with(PREFIX) || !suffix.ends_with(b"\"}") {
        return None;
    }
    let hex = std::str::from_utf8(&suffix[PREFIX.len()..PREFIX.len() + 64]).ok()?;
    crate::hex::decode(hex)?.try_into().ok()
}

/// The SHA-256 of the canonical bytes of a payload that carries a chain:
/// the payload without `,"chain":"…"`.
pub fn canonical_digest(payload: &[u8]) -> Option<[u8; 32]> {
    carried(payload)?;
    let mut h = Sha256::new();
    h.update(&payload[..payload.len() - SUFFIX_LEN]);
    h.update(b"}");
    Some(h.finalize().into())
}

/// Why a record breaks its partition's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// It carries a hash, and it is not what its bytes and its
    /// predecessor's hash give: the record was changed, or records before
    /// it were removed, reordered or inserted.
    Mismatch,
    /// It carries no chain after records that did.
    Unchained,
}

/// Checks one record after a chain at `prev` (`chained`: whether a record
/// before it carried a chain); the chain hash after it.
pub fn check(prev: &[u8; 32], chained: bool, payload: &[u8]) -> Result<[u8; 32], Break> {
    match (carried(payload), canonical_digest(payload)) {
        (Some(hash), Some(digest)) => {
            if step(prev, &digest) == hash {
                Ok(hash)
            } else {
                Err(Break::Mismatch)
            }
        }
        _ if chained => Err(Break::Unchained),
        _ => Ok(step(prev, &Sha256::digest(payload).into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_event_carries_its_chain_and_reads_as_json() {
        let canonical = br#"{"event_id":"a","body":{"x":1}}"#;
        let (payload, hash) = seal(canonical, &digest(canonical), &GENESIS);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["chain"], crate::hex::encode(&hash));
        assert_eq!(v["body"]["x"], 1);
        assert_eq!(carried(&payload), Some(hash));
        assert_eq!(canonical_digest(&payload), Some(digest(canonical)));
        assert_eq!(check(&GENESIS, false, &payload), Ok(hash));
        assert_eq!(Link::of(&payload).head_after(&[7; 32]), hash);
    }

    #[test]
    fn changed_bytes_or_another_predecessor_break_the_chain() {
        let a = br#"{"event_id":"a"}"#;
        let (pa, ha) = seal(a, &digest(a), &GENESIS);
        let b = br#"{"event_id":"b"}"#;
        let (pb, _) = seal(b, &digest(b), &ha);
        assert!(check(&ha, true, &pb).is_ok());
        // b after something other than a (a removed, or reordered)
        assert_eq!(check(&GENESIS, false, &pb), Err(Break::Mismatch));
        // a changed
        let mut changed = pa.clone();
        changed[3] = b'E';
        assert_eq!(check(&GENESIS, false, &changed), Err(Break::Mismatch));
        // an unchained record after chained ones
        assert_eq!(check(&ha, true, b"{\"hello\":1}"), Err(Break::Unchained));
        // but before any, it chains by its digest
        let legacy = b"{\"old\":1}";
        assert_eq!(
            check(&GENESIS, false, legacy),
            Ok(step(&GENESIS, &digest(legacy)))
        );
        assert_eq!(
            Link::of(legacy).head_after(&GENESIS),
            step(&GENESIS, &digest(legacy))
        );
    }
}
