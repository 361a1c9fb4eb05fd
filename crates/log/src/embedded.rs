//! The embedded log: one frame file per topic in `DATA_DIR/log`
//! (`P.events.frames`, `P.rejected.frames`), a single partition (0).
//!
//! Records are stored in chunks of up to `CHUNK_RECORDS_MAX`, one frame
//! each: `base offset u64 | count u32 | LZ4(size-prepended) of the
//! records`, a record being `u16 key_len | key | u32 len | payload`
//! (big-endian). An append is one frame-file append: synced before it is
//! acknowledged, and durable as a whole or not at all (`frames`). Every
//! chunk read is checked against its checksum.
//!
//! A data dir written by an earlier build keeps its log in sled, in
//! `DATA_DIR/log` itself, with the same chunks as values keyed by their
//! base offset: it is copied into frame files once, on open, and the sled
//! files are moved to `DATA_DIR/log.sled-migrated`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tracing::instrument;

use crate::frames::{DirLock, FrameError, FrameFile, FrameInfo};
use crate::{
    Delivered, EventLog, LogError, Position, Positions, Record, Started, Topic, TopicNames,
};

/// Records per chunk. Small enough that reading one record costs little
/// (a chunk compresses to tens of KiB), large enough that per-frame costs
/// vanish per record.
const CHUNK_RECORDS_MAX: usize = 512;

/// The frame kind of a chunk.
const CHUNK: u8 = 1;

/// Bytes of a chunk frame before its records: base offset and count.
const CHUNK_HEAD: usize = 12;

/// One chunk of the index: the offsets it holds and its frame.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    base: u64,
    count: u32,
    frame: FrameInfo,
}

struct TopicFile {
    frames: FrameFile,
    chunks: Vec<Chunk>,
    /// Offset one past the last record.
    end: u64,
}

pub struct EmbeddedLog {
    dir: PathBuf,
    topics: TopicNames,
    files: HashMap<Topic, Arc<RwLock<TopicFile>>>,
    /// Appends started (`start_append`) and not finished, per topic: each
    /// is encoded, written and synced on a thread of its own while the
    /// caller works on.
    in_flight: Mutex<HashMap<Topic, InFlight>>,
    _lock: DirLock,
}

type InFlight = JoinHandle<Result<Vec<Position>, LogError>>;

fn frame_err(e: FrameError) -> LogError {
    match e {
        FrameError::Corrupt { path, at, detail } => LogError::Corrupt {
            path,
            detail: format!("at byte {at}: {detail}"),
        },
        other => LogError::File(other.to_string()),
    }
}

impl EmbeddedLog {
    /// Opens (creating if needed) the embedded log under `data_dir/log`.
    pub fn open(data_dir: &Path, topics: TopicNames) -> Result<EmbeddedLog, LogError> {
        let dir = data_dir.join("log");
        let lock = DirLock::acquire(&dir).map_err(frame_err)?;
        if legacy::is_sled(&dir) {
            legacy::migrate(data_dir, &dir, &topics)?;
        }
        let mut files = HashMap::new();
        for topic in [Topic::Events, Topic::Rejected] {
            let path = dir.join(format!("{}.frames", topics.name(topic)));
            files.insert(topic, Arc::new(RwLock::new(TopicFile::open(&path)?)));
        }
        Ok(EmbeddedLog {
            dir,
            topics,
            files,
            in_flight: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    fn file(&self, topic: Topic) -> &Arc<RwLock<TopicFile>> {
        self.files.get(&topic).expect("both topics are opened")
    }

    /// An error when an append is in flight on `topic`: appends to a topic
    /// are taken one after the other, in the order they were asked for.
    fn none_in_flight(&self, topic: Topic) -> Result<(), LogError> {
        let in_flight = self.in_flight.lock().expect("log lock");
        if in_flight.contains_key(&topic) {
            return Err(self.busy(topic));
        }
        Ok(())
    }

    /// Why another append to `topic` is refused while one is in flight.
    fn busy(&self, topic: Topic) -> LogError {
        LogError::File(format!(
            "an append to {} is in flight ({})",
            self.topics.name(topic),
            self.describe()
        ))
    }

    /// Offset one past the last record of a topic.
    pub fn end(&self, topic: Topic) -> u64 {
        self.file(topic).read().expect("log lock").end
    }

    /// Everything appended is already durable: appends sync before they
    /// return. Kept for callers that flush before they stop.
    pub fn flush(&self) -> Result<(), LogError> {
        Ok(())
    }
}

impl TopicFile {
    fn open(path: &Path) -> Result<TopicFile, LogError> {
        let (frames, found) = FrameFile::open(path, CHUNK_HEAD).map_err(frame_err)?;
        let mut chunks = Vec::with_capacity(found.len());
        let mut end = 0u64;
        for (frame, head) in found {
            let chunk = chunk_of(frame, &head).ok_or_else(|| LogError::Corrupt {
                path: path.display().to_string(),
                detail: format!("at byte {}: not a chunk of records", frame.at),
            })?;
            if chunk.base != end {
                return Err(LogError::Corrupt {
                    path: path.display().to_string(),
                    detail: format!(
                        "at byte {}: a chunk from offset {} where {end} was next",
                        frame.at, chunk.base
                    ),
                });
            }
            end = chunk.base + u64::from(chunk.count);
            chunks.push(chunk);
        }
        Ok(TopicFile {
            frames,
            chunks,
            end,
        })
    }

    /// The records of chunk `i`, checked and decompressed.
    fn records(&self, i: usize) -> Result<Vec<(String, Vec<u8>)>, LogError> {
        let chunk = self.chunks[i];
        let payload = self.frames.checked(chunk.frame).map_err(frame_err)?;
        let corrupt = |detail: String| LogError::Corrupt {
            path: self.frames.path().display().to_string(),
            detail: format!("at byte {}: {detail}", chunk.frame.at),
        };
        let plain = lz4_flex::decompress_size_prepended(&payload[CHUNK_HEAD..])
            .map_err(|e| corrupt(format!("chunk does not decompress: {e}")))?;
        let records = decode_chunk(&plain).map_err(corrupt)?;
        if records.len() != chunk.count as usize {
            return Err(corrupt(format!(
                "chunk holds {} records, its header says {}",
                records.len(),
                chunk.count
            )));
        }
        Ok(records
            .into_iter()
            .map(|(k, p)| (k.to_string(), p.to_vec()))
            .collect())
    }
}

/// Appends `records` to a topic's file as one synced frame-file append,
/// a frame per chunk: durable as a whole or not at all.
fn append_to(file: &RwLock<TopicFile>, records: &[Record]) -> Result<Vec<Position>, LogError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut file = file.write().expect("log lock");
    let start = file.end;
    let mut payloads = Vec::new();
    let mut base = start;
    for chunk in records.chunks(CHUNK_RECORDS_MAX) {
        payloads.push((base, chunk.len() as u32, encode_chunk(base, chunk)));
        base += chunk.len() as u64;
    }
    let frames: Vec<(u8, &[u8])> = payloads.iter().map(|p| (CHUNK, p.2.as_slice())).collect();
    // Durable before we answer: the write model commits only after
    // this returns, and it must never be ahead of the log.
    let infos = file.frames.append(&frames).map_err(frame_err)?;
    for ((base, count, _), frame) in payloads.iter().zip(infos) {
        file.chunks.push(Chunk {
            base: *base,
            count: *count,
            frame,
        });
    }
    file.end = base;
    Ok((start..base)
        .map(|offset| Position::new(0, offset))
        .collect())
}

impl Drop for EmbeddedLog {
    /// An append still in flight is waited for, so that it is not cut off
    /// half-written when the log is closed.
    fn drop(&mut self) {
        let in_flight = std::mem::take(&mut *self.in_flight.lock().expect("log lock"));
        for (_, handle) in in_flight {
            let _ = handle.join();
        }
    }
}

fn chunk_of(frame: FrameInfo, head: &[u8]) -> Option<Chunk> {
    if frame.kind != CHUNK || head.len() < CHUNK_HEAD {
        return None;
    }
    Some(Chunk {
        base: u64::from_be_bytes(head[..8].try_into().ok()?),
        count: u32::from_be_bytes(head[8..12].try_into().ok()?),
        frame,
    })
}

fn encode_chunk(base: u64, records: &[Record]) -> Vec<u8> {
    let size: usize = records
        .iter()
        .map(|r| 6 + r.key.len() + r.payload.len())
        .sum();
    let mut plain = Vec::with_capacity(size);
    for r in records {
        let key_len =
            u16::try_from(r.key.len()).expect("record keys are merchant ids, far below 64 KiB");
        let len = u32::try_from(r.payload.len()).expect("records are far below 4 GiB");
        plain.extend_from_slice(&key_len.to_be_bytes());
        plain.extend_from_slice(r.key.as_bytes());
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(&r.payload);
    }
    let mut out = Vec::with_capacity(CHUNK_HEAD + plain.len() / 2);
    out.extend_from_slice(&base.to_be_bytes());
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    out.extend_from_slice(&lz4_flex::compress_prepend_size(&plain));
    out
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
        self.none_in_flight(topic)?;
        append_to(self.file(topic), records)
    }

    /// The append runs on a thread of its own (LZ4, write, sync): the
    /// caller decides its next batch meanwhile.
    fn start_append(&self, topic: Topic, records: Vec<Record>) -> Result<Started, LogError> {
        let mut in_flight = self.in_flight.lock().expect("log lock");
        if in_flight.contains_key(&topic) {
            return Err(self.busy(topic));
        }
        let file = Arc::clone(self.file(topic));
        let handle = std::thread::Builder::new()
            .name("log-append".to_string())
            .spawn(move || append_to(&file, &records))
            .map_err(|e| LogError::File(format!("starting an append: {e}")))?;
        in_flight.insert(topic, handle);
        Ok(Started::InFlight)
    }

    fn finish_append(&self, topic: Topic) -> Result<Vec<Position>, LogError> {
        let handle = self.in_flight.lock().expect("log lock").remove(&topic);
        let Some(handle) = handle else {
            return Err(LogError::File(format!(
                "no append to {} in flight ({})",
                self.topics.name(topic),
                self.describe()
            )));
        };
        handle
            .join()
            .map_err(|_| LogError::File(format!("an append to {} failed", self.describe())))?
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
        let file = self.file(topic).read().expect("log lock");
        // The chunk holding `offset` is the last one whose base is <= offset.
        let first = file
            .chunks
            .partition_point(|c| c.base <= offset)
            .saturating_sub(1);
        let mut out = Vec::new();
        for i in first..file.chunks.len() {
            if out.len() >= records_max {
                break;
            }
            let base = file.chunks[i].base;
            for (j, (key, payload)) in file.records(i)?.into_iter().enumerate() {
                let at = base + j as u64;
                if at < offset {
                    continue;
                }
                if out.len() >= records_max {
                    break;
                }
                out.push(Delivered {
                    position: Position::new(0, at),
                    key,
                    payload,
                });
            }
        }
        Ok(out)
    }

    fn end_offsets(&self, topic: Topic) -> Result<Option<Positions>, LogError> {
        Ok(Some([(0, self.end(topic))].into_iter().collect()))
    }

    fn dense_offsets(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("embedded log at {}", self.dir.display())
    }
}

/// The sled log of earlier builds, read once to migrate it.
mod legacy {
    use std::path::Path;

    use crate::{LogError, Record, Topic, TopicNames};

    /// Whether `dir` holds a sled store (earlier builds' embedded log).
    pub fn is_sled(dir: &Path) -> bool {
        dir.join("conf").exists() && dir.join("db").exists()
    }

    /// Copies every topic's records into frame files, then moves the sled
    /// files out of the way, to `DATA_DIR/log.sled-migrated`.
    pub fn migrate(data_dir: &Path, dir: &Path, topics: &TopicNames) -> Result<(), LogError> {
        let storage = |e: &dyn std::fmt::Display| {
            LogError::File(format!("migrating the sled log at {}: {e}", dir.display()))
        };
        tracing::warn!(dir = %dir.display(), "migrating the embedded log from sled to frame files");
        {
            let db = open_sled(dir).map_err(|e| storage(&e))?;
            for topic in [Topic::Events, Topic::Rejected] {
                let name = topics.name(topic);
                let tree = db.open_tree(name).map_err(|e| storage(&e))?;
                let mut records = Vec::new();
                for kv in tree.iter() {
                    let (_, v) = kv.map_err(|e| storage(&e))?;
                    let plain = lz4_flex::decompress_size_prepended(&v).map_err(|e| storage(&e))?;
                    for (key, payload) in super::decode_chunk(&plain).map_err(|e| storage(&e))? {
                        records.push(Record {
                            key: key.to_string(),
                            payload: payload.to_vec(),
                            headers: Vec::new(),
                            partition: None,
                        });
                    }
                }
                write_topic(&dir.join(format!("{name}.frames")), &records)?;
            }
        }
        let away = data_dir.join("log.sled-migrated");
        std::fs::create_dir_all(&away).map_err(|e| storage(&e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| storage(&e))? {
            let entry = entry.map_err(|e| storage(&e))?;
            let name = entry.file_name();
            let keep = name == "LOCK" || name.to_string_lossy().ends_with(".frames");
            if !keep {
                std::fs::rename(entry.path(), away.join(&name)).map_err(|e| storage(&e))?;
            }
        }
        Ok(())
    }

    /// sled releases its lock from a background thread after a store is
    /// dropped: an open right after may find it held for a moment.
    fn open_sled(dir: &Path) -> sled::Result<sled::Db> {
        let start = std::time::Instant::now();
        loop {
            match sled::open(dir) {
                Err(e)
                    if e.to_string().contains("lock")
                        && start.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other,
            }
        }
    }

    /// Writes a topic's records as a fresh frame file, under a temporary
    /// name renamed when complete: a crash mid-way leaves the sled log as
    /// the one to migrate again.
    fn write_topic(path: &Path, records: &[Record]) -> Result<(), LogError> {
        let tmp = path.with_extension("migrating");
        let _ = std::fs::remove_file(&tmp);
        {
            let (mut f, _) = crate::frames::FrameFile::open(&tmp, 0).map_err(super::frame_err)?;
            let mut base = 0u64;
            let mut payloads = Vec::new();
            for chunk in records.chunks(super::CHUNK_RECORDS_MAX) {
                payloads.push(super::encode_chunk(base, chunk));
                base += chunk.len() as u64;
            }
            let frames: Vec<(u8, &[u8])> = payloads
                .iter()
                .map(|p| (super::CHUNK, p.as_slice()))
                .collect();
            f.append(&frames).map_err(super::frame_err)?;
        }
        std::fs::rename(&tmp, path).map_err(|e| LogError::File(format!("{}: {e}", path.display())))
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
            partition: None,
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

    #[test]
    fn a_second_process_on_the_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _log = EmbeddedLog::open(dir.path(), TopicNames::with_prefix("t")).unwrap();
        let err = EmbeddedLog::open(dir.path(), TopicNames::with_prefix("t"))
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
    }

    #[test]
    fn a_flipped_bit_is_a_corrupt_log_naming_the_file_never_other_records() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicNames::with_prefix("t");
        {
            let log = EmbeddedLog::open(dir.path(), topics.clone()).unwrap();
            log.append(Topic::Events, &[rec("a", "first")]).unwrap();
            log.append(Topic::Events, &[rec("a", "second")]).unwrap();
        }
        let path = dir.path().join("log/t.events.frames");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let log = EmbeddedLog::open(dir.path(), topics).unwrap();
        let err = log.read(Topic::Events, 0, 0, 10).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("t.events.frames"), "{err}");
    }

    /// What earlier builds wrote: sled trees of LZ4 chunks keyed by base.
    fn legacy_chunk(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, p) in records {
            out.extend_from_slice(&(k.len() as u16).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p.as_bytes());
        }
        lz4_flex::compress_prepend_size(&out)
    }

    #[test]
    fn a_sled_log_of_an_earlier_build_is_migrated_once_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicNames::with_prefix("t");
        {
            let db = sled::open(dir.path().join("log")).unwrap();
            let events = db.open_tree("t.events").unwrap();
            events
                .insert(
                    0u64.to_be_bytes(),
                    legacy_chunk(&[("m1", "e0"), ("m2", "e1")]),
                )
                .unwrap();
            events
                .insert(2u64.to_be_bytes(), legacy_chunk(&[("m1", "e2")]))
                .unwrap();
            db.open_tree("t.rejected")
                .unwrap()
                .insert(0u64.to_be_bytes(), legacy_chunk(&[("f", "r0")]))
                .unwrap();
            db.flush().unwrap();
        }
        for _ in 0..2 {
            let log = EmbeddedLog::open(dir.path(), topics.clone()).unwrap();
            let got: Vec<(u64, String, Vec<u8>)> = log
                .read(Topic::Events, 0, 0, 10)
                .unwrap()
                .into_iter()
                .map(|d| (d.position.offset, d.key, d.payload))
                .collect();
            assert_eq!(
                got,
                vec![
                    (0, "m1".to_string(), b"e0".to_vec()),
                    (1, "m2".to_string(), b"e1".to_vec()),
                    (2, "m1".to_string(), b"e2".to_vec())
                ]
            );
            assert_eq!(log.end(Topic::Rejected), 1);
        }
        assert!(dir.path().join("log.sled-migrated/db").exists());
    }
}
