//! The embedded log: sled in `DATA_DIR/log`, one tree per topic, a single
//! partition (0). Records are stored in append-only chunks keyed by the
//! big-endian offset of their first record, so a batch of thousands of
//! records is one sled insert and every record keeps a stable offset.
//!
//! Chunk encoding, repeated per record: `u16 key_len | key | u32 len | payload`
//! (big-endian lengths), the whole chunk compressed with LZ4 (size-prefixed
//! block). sled keeps values inline in its tree nodes and rewrites a node
//! with all its values when it changes, so the bytes per value matter far
//! more than the number of values: JSON events compress several times over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::instrument;

use crate::{Delivered, EventLog, LogError, Position, Record, Topic, TopicNames};

/// Records per chunk. Small enough that a sled node rewrite stays cheap
/// (a chunk compresses to tens of KiB), large enough that the per-insert
/// cost of sled (microseconds) vanishes per record.
const CHUNK_RECORDS_MAX: usize = 512;

pub struct EmbeddedLog {
    path: PathBuf,
    db: sled::Db,
    topics: TopicNames,
    /// Next offset per topic; the mutex also serialises appends, which is
    /// what keeps offsets dense and ordered.
    next: Mutex<HashMap<Topic, u64>>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the embedded log under `data_dir/log`.
    pub fn open(data_dir: &Path, topics: TopicNames) -> Result<EmbeddedLog, LogError> {
        let path = data_dir.join("log");
        let db = crate::store::open(&path).map_err(|source| LogError::Storage {
            path: path.display().to_string(),
            source,
        })?;
        let log = EmbeddedLog {
            path,
            db,
            topics,
            next: Mutex::new(HashMap::new()),
        };
        let mut next = HashMap::new();
        for topic in [Topic::Events, Topic::Rejected] {
            next.insert(topic, log.end_offset(topic)?);
        }
        *log.next.lock().expect("log mutex") = next;
        Ok(log)
    }

    fn storage(&self, source: sled::Error) -> LogError {
        LogError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: self.path.display().to_string(),
            detail: detail.into(),
        }
    }

    fn tree(&self, topic: Topic) -> Result<sled::Tree, LogError> {
        self.db
            .open_tree(self.topics.name(topic))
            .map_err(|e| self.storage(e))
    }

    fn end_offset(&self, topic: Topic) -> Result<u64, LogError> {
        let tree = self.tree(topic)?;
        match tree.last().map_err(|e| self.storage(e))? {
            None => Ok(0),
            Some((k, v)) => {
                let base =
                    decode_base(&k).ok_or_else(|| self.corrupt("chunk key is not 8 bytes"))?;
                let plain = decompress(&v).map_err(|d| self.corrupt(d))?;
                let count = decode_chunk(&plain).map_err(|d| self.corrupt(d))?.len() as u64;
                Ok(base + count)
            }
        }
    }

    /// Makes everything appended so far durable on disk.
    pub fn flush(&self) -> Result<(), LogError> {
        self.db.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    /// Offset one past the last record of a topic.
    pub fn end(&self, topic: Topic) -> u64 {
        *self
            .next
            .lock()
            .expect("log mutex")
            .get(&topic)
            .unwrap_or(&0)
    }
}

fn decode_base(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

fn encode_chunk(records: &[Record]) -> Vec<u8> {
    let size: usize = records
        .iter()
        .map(|r| 6 + r.key.len() + r.payload.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for r in records {
        let key_len =
            u16::try_from(r.key.len()).expect("record keys are merchant ids, far below 64 KiB");
        let len = u32::try_from(r.payload.len()).expect("records are far below 4 GiB");
        out.extend_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(r.key.as_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&r.payload);
    }
    lz4_flex::compress_prepend_size(&out)
}

fn decompress(chunk: &[u8]) -> Result<Vec<u8>, String> {
    lz4_flex::decompress_size_prepended(chunk)
        .map_err(|e| format!("chunk does not decompress: {e}"))
}

/// Splits a decompressed chunk into `(key, payload)` slices.
fn decode_chunk(bytes: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if rest.len() < n {
            return Err(format!(
                "chunk truncated: wanted {n} bytes, {} left",
                rest.len()
            ));
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    while !rest.is_empty() {
        let key_len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().expect("2 bytes")) as usize;
        let key = std::str::from_utf8(take(&mut rest, key_len)?)
            .map_err(|e| format!("record key: {e}"))?;
        let len = u32::from_be_bytes(take(&mut rest, 4)?.try_into().expect("4 bytes")) as usize;
        out.push((key, take(&mut rest, len)?));
    }
    Ok(out)
}

impl EventLog for EmbeddedLog {
    #[instrument(level = "debug", skip(self, records), fields(records = records.len()))]
    fn append(&self, topic: Topic, records: &[Record]) -> Result<Vec<Position>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let tree = self.tree(topic)?;
        let mut next = self.next.lock().expect("log mutex");
        let start = *next.get(&topic).unwrap_or(&0);
        let mut batch = sled::Batch::default();
        let mut base = start;
        for chunk in records.chunks(CHUNK_RECORDS_MAX) {
            batch.insert(&base.to_be_bytes(), encode_chunk(chunk));
            base += chunk.len() as u64;
        }
        tree.apply_batch(batch).map_err(|e| self.storage(e))?;
        // Durable before we answer: ingest stores its write model only after
        // this returns, and the write model must never be ahead of the log.
        self.db.flush().map_err(|e| self.storage(e))?;
        next.insert(topic, base);
        Ok((start..base)
            .map(|offset| Position::new(0, offset))
            .collect())
    }

    fn partitions(&self, _topic: Topic) -> Result<u32, LogError> {
        Ok(1)
    }

    fn read(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
        records_max: usize,
    ) -> Result<Vec<Delivered>, LogError> {
        if partition != 0 {
            return Err(LogError::NoSuchPartition {
                topic: self.topics.name(topic).to_string(),
                partition,
            });
        }
        let tree = self.tree(topic)?;
        // The chunk holding `offset` is the last one whose base is <= offset.
        let first_base = match tree.range(..=offset.to_be_bytes()).next_back() {
            Some(kv) => decode_base(&kv.map_err(|e| self.storage(e))?.0).unwrap_or(0),
            None => 0,
        };
        let mut out = Vec::new();
        for kv in tree.range(first_base.to_be_bytes()..) {
            let (k, v) = kv.map_err(|e| self.storage(e))?;
            let base = decode_base(&k).ok_or_else(|| self.corrupt("chunk key is not 8 bytes"))?;
            let plain = decompress(&v).map_err(|d| self.corrupt(d))?;
            for (i, (key, payload)) in decode_chunk(&plain)
                .map_err(|d| self.corrupt(d))?
                .into_iter()
                .enumerate()
            {
                let at = base + i as u64;
                if at < offset {
                    continue;
                }
                if out.len() >= records_max {
                    return Ok(out);
                }
                out.push(Delivered {
                    position: Position::new(0, at),
                    key: key.to_string(),
                    payload: payload.to_vec(),
                });
            }
            if out.len() >= records_max {
                break;
            }
        }
        Ok(out)
    }

    fn end_offsets(&self, topic: Topic) -> Result<Option<crate::Positions>, LogError> {
        Ok(Some([(0, self.end(topic))].into_iter().collect()))
    }

    fn dense_offsets(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("embedded log at {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, payload: &str) -> Record {
        Record {
            key: key.to_string(),
            payload: payload.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn offsets_are_dense_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicNames::with_prefix("t");
        {
            let log = EmbeddedLog::open(dir.path(), topics.clone()).unwrap();
            let p = log
                .append(Topic::Events, &[rec("a", "1"), rec("b", "2")])
                .unwrap();
            assert_eq!(p.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![0, 1]);
            log.flush().unwrap();
        }
        let log = EmbeddedLog::open(dir.path(), topics).unwrap();
        let p = log.append(Topic::Events, &[rec("c", "3")]).unwrap();
        assert_eq!(p[0].offset, 2);
        let all = log.read(Topic::Events, 0, 0, 10).unwrap();
        assert_eq!(
            all.iter().map(|d| d.payload.clone()).collect::<Vec<_>>(),
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        assert_eq!(all[2].key, "c");
        assert!(log.read(Topic::Rejected, 0, 0, 10).unwrap().is_empty());
    }

    #[test]
    fn reads_from_inside_a_chunk_and_respects_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), TopicNames::with_prefix("t")).unwrap();
        let records: Vec<Record> = (0..(CHUNK_RECORDS_MAX + 10))
            .map(|i| rec("k", &i.to_string()))
            .collect();
        log.append(Topic::Events, &records).unwrap();
        let got = log
            .read(Topic::Events, 0, CHUNK_RECORDS_MAX as u64 - 2, 5)
            .unwrap();
        let offsets: Vec<u64> = got.iter().map(|d| d.position.offset).collect();
        let first = CHUNK_RECORDS_MAX as u64 - 2;
        assert_eq!(offsets, (first..first + 5).collect::<Vec<_>>());
        assert_eq!(got[0].payload, first.to_string().into_bytes());
        assert!(log
            .read(Topic::Events, 0, records.len() as u64, 5)
            .unwrap()
            .is_empty());
    }
}
