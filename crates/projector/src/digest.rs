//! The digest of the projection state: SHA-256 over the SHA-256 of every
//! key and value in key order, except that batch values (segments)
//! contribute each record on its own, so the digest does not depend on
//! batch boundaries, and that the stored positions are left out: they are
//! reported beside the digest.

use sha2::{Digest, Sha256};

use crate::entries::bounds;
use crate::keys::{self, SegmentKind};
use crate::{Projector, ProjectorError};

impl Projector {
    /// SHA-256 over the projection state: over the SHA-256 of every key and
    /// value in key order (computed in parallel), except that batch values
    /// (`txn/`, `rk/`, `risk/`) contribute each record on its own, so the
    /// digest does not depend on batch boundaries, and
    /// that the stored positions are left out: they are reported beside the
    /// digest (`stored_positions`), so that a log carrying redelivered
    /// copies of the same events yields the same state digest.
    pub fn digest(&self) -> Result<String, ProjectorError> {
        let mut state = DigestState::default();
        self.digest_leg(&mut state, u64::MAX)?;
        Ok(state.finish())
    }

    /// Goes on with a digest from where `state` stopped, over at most
    /// `bytes_max` bytes of stored values (then `state.done()` is false and
    /// another leg, on a store opened afresh, goes on: sled keeps what an
    /// open store read in memory, and a whole ledger does not fit).
    pub fn digest_leg(
        &self,
        state: &mut DigestState,
        bytes_max: u64,
    ) -> Result<(), ProjectorError> {
        /// Stored bytes whose records are split and hashed in parallel at
        /// a time: bounds the memory of the decompressed records.
        const CHUNK_BYTES: u64 = 8 << 20;
        let iter = match &state.after {
            Some(k) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(k.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.iter(),
        };
        let mut read = 0u64;
        let mut chunk: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        let mut chunk_bytes = 0u64;
        let mut stopped = false;
        let mut iter = iter.peekable();
        loop {
            let next = match iter.next() {
                Some(kv) => Some(kv.map_err(|e| self.storage(e))?),
                None => None,
            };
            let flush = match &next {
                None => true,
                Some((k, v)) => {
                    if read >= bytes_max {
                        stopped = true;
                        true
                    } else {
                        let n = (k.len() + v.len()) as u64;
                        read += n;
                        chunk_bytes += n;
                        false
                    }
                }
            };
            if let (false, Some(kv)) = (flush, next) {
                chunk.push(kv);
                if chunk_bytes < CHUNK_BYTES {
                    continue;
                }
            }
            self.hash_chunk(&chunk, state)?;
            chunk.clear();
            chunk_bytes = 0;
            if stopped {
                return Ok(());
            }
            if iter.peek().is_none() {
                break;
            }
        }
        state.done = true;
        Ok(())
    }

    /// Goes on with `state` over `chunk`, stored keys and values next in
    /// key order: each value's records (or the value itself) hashed in
    /// parallel, the record hashes then put into the digest in order.
    pub(crate) fn hash_chunk(
        &self,
        chunk: &[(sled::IVec, sled::IVec)],
        state: &mut DigestState,
    ) -> Result<(), ProjectorError> {
        use rayon::prelude::*;
        let hashed: Vec<Vec<[u8; 32]>> = chunk
            .par_iter()
            .map(|(k, v)| self.record_hashes(k, v))
            .collect::<Result<_, _>>()?;
        for h in hashed.iter().flatten() {
            state.hasher.update(h);
        }
        if let Some((k, _)) = chunk.last() {
            state.after = Some(k.to_vec());
        }
        Ok(())
    }

    /// The SHA-256 of each record a stored value holds, with the part of
    /// its key that does not depend on batching: a segment's records one by
    /// one (as stored: the same struct encoded by the same code), other
    /// values whole; positions none.
    fn record_hashes(&self, k: &[u8], v: &[u8]) -> Result<Vec<[u8; 32]>, ProjectorError> {
        let hash = |key: &[u8], value: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update((key.len() as u64).to_be_bytes());
            h.update(key);
            h.update((value.len() as u64).to_be_bytes());
            h.update(value);
            h.finalize().into()
        };
        if keys::is_position(k) {
            return Ok(Vec::new());
        }
        let Some((kind, date_len)) = SegmentKind::of_key(k) else {
            return Ok(vec![hash(k, v)]);
        };
        // `PREFIX/DATE/`
        let date_part = &k[..date_len];
        let plain = lz4_flex::decompress_size_prepended(v)
            .map_err(|e| self.corrupt(format!("segment: {e}")))?;
        let corrupt = |e: &dyn std::fmt::Display| self.corrupt(format!("segment: {e}"));
        let mut out = Vec::new();
        match kind {
            SegmentKind::Risk => {
                let items: Vec<&serde_json::value::RawValue> =
                    serde_json::from_slice(&plain).map_err(|e| corrupt(&e))?;
                for item in items {
                    out.push(hash(date_part, item.get().as_bytes()));
                }
            }
            SegmentKind::Txn | SegmentKind::Recon => {
                // postcard: a length, then the records back to back; each
                // record's bytes are what decoding it consumes.
                let (n, mut rest) =
                    postcard::take_from_bytes::<usize>(&plain).map_err(|e| corrupt(&e))?;
                // Each record's bounds are found without decoding it
                // (`entries::bounds`); the segment must end with its last.
                let after = if kind == SegmentKind::Recon {
                    bounds::after_recon
                } else {
                    bounds::after_txn
                };
                out.reserve(n);
                for _ in 0..n {
                    let before = rest;
                    rest = after(rest).map_err(|e| corrupt(&e))?;
                    out.push(hash(date_part, &before[..before.len() - rest.len()]));
                }
                if !rest.is_empty() {
                    return Err(corrupt(&format!(
                        "{} bytes after its {n} records",
                        rest.len()
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// A digest under way (see `Projector::digest_leg`).
#[derive(Default)]
pub struct DigestState {
    hasher: Sha256,
    /// The last key hashed.
    after: Option<Vec<u8>>,
    done: bool,
}

impl DigestState {
    pub fn done(&self) -> bool {
        self.done
    }

    pub fn finish(self) -> String {
        clearing_core::hex::encode(&self.hasher.finalize())
    }
}
