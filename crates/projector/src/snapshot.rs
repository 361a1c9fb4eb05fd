//! Snapshots of the projection state: immutable files, one per snapshot,
//! beside the projections (`DATA_DIR/snapshots/`), that a replay starts
//! from instead of the first event.
//!
//! A file is: the magic `CLRSNAP\n`, the snapshot format (u32 BE), frames
//! of the state's keys and values in key order (each a u32 BE length and
//! an LZ4 postcard `Vec<(key, value)>`; a zero length ends them), the
//! header (JSON: the log position, the projection format, the digest of
//! the state…), its length (u32 BE), and the SHA-256 of every byte before
//! it. The header sits at the end because the digest is taken while the
//! state is written, in one pass; reading a header needs only the tail.
//!
//! Nothing in a snapshot is trusted blindly: a replay checks its format,
//! its SHA-256 and, once restored, that the log holds the records its
//! positions say were applied last; `clearing verify` checks its digest
//! against the state rebuilt from the log at its position.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clearing_core::hashing::Hashing;
use serde::{Deserialize, Serialize};

use crate::digest::DigestState;
use crate::{Projector, ProjectorError, FORMAT};

const MAGIC: &[u8; 8] = b"CLRSNAP\n";

/// The layout of a snapshot file. Raise it when the layout changes: files
/// of another format are skipped by replays, never read.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Stored bytes per frame.
const FRAME_BYTES: usize = 4 << 20;

/// File names end so.
const SUFFIX: &str = ".snap";

/// `recorded_through` of a partition whose state was built before this
/// was kept: it is unknown, so no time cut can use the snapshot.
pub const THROUGH_UNKNOWN: i64 = i64::MAX;

/// What a snapshot holds, at the end of its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The projections' format (`FORMAT`) the state was built in.
    pub projection_format: u32,
    /// Next offset per partition: the log position the state reflects.
    pub positions: BTreeMap<u32, u64>,
    /// Per partition, the latest `recorded_at` (µs since the epoch) of the
    /// events before its position (`THROUGH_UNKNOWN` when not known).
    pub recorded_through: BTreeMap<u32, i64>,
    /// The latest business date of the transactions the state holds.
    pub latest_business_date: Option<NaiveDate>,
    /// `Projector::digest` of the state.
    pub digest: String,
    /// Keys stored.
    pub keys: u64,
    /// Why it was taken (`close of 2026-11-20`, `every 1000000 offsets`).
    pub reason: String,
    /// When it was taken (RFC 3339, this machine's clock).
    pub taken_at: String,
}

impl SnapshotHeader {
    /// Offsets before the position, summed over partitions.
    pub fn offsets(&self) -> u64 {
        self.positions.values().sum()
    }
}

/// A snapshot file found in a snapshot directory.
#[derive(Clone, Debug)]
pub struct Found {
    pub path: PathBuf,
    /// Its header, or why it cannot be used.
    pub header: Result<SnapshotHeader, String>,
    /// It cannot be used because it is of another snapshot or projection
    /// format (an upgrade left it behind), not because it is damaged.
    pub other_format: bool,
}

/// Every `*.snap` file of `dir` (none when it does not exist), oldest
/// first by the offsets they reflect; unreadable ones last.
pub fn list(dir: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(SUFFIX)))
        .map(|path| {
            let (header, other_format) = match header_of(&path) {
                Ok(h) => (Ok(h), false),
                Err((why, other_format)) => (Err(why), other_format),
            };
            Found {
                header,
                other_format,
                path,
            }
        })
        .collect();
    found.sort_by_key(|f| match &f.header {
        Ok(h) => (0, h.offsets(), f.path.clone()),
        Err(_) => (1, 0, f.path.clone()),
    });
    found
}

/// The header of a snapshot file, without checking the rest of it.
pub fn read_header(path: &Path) -> Result<SnapshotHeader, String> {
    header_of(path).map_err(|(why, _)| why)
}

/// The header, or why not and whether because of its format.
fn header_of(path: &Path) -> Result<SnapshotHeader, (String, bool)> {
    let other_format = |why: String| (why, true);
    let damaged = |why: String| (why, false);
    let h = header_unchecked(path).map_err(|e| match e {
        Unread::Format(why) => other_format(why),
        Unread::Damaged(why) => damaged(why),
    })?;
    if h.projection_format != FORMAT {
        return Err(other_format(format!(
            "holds projections of format {}; this build's are of format {FORMAT}",
            h.projection_format
        )));
    }
    Ok(h)
}

enum Unread {
    Format(String),
    Damaged(String),
}

impl From<String> for Unread {
    fn from(why: String) -> Unread {
        Unread::Damaged(why)
    }
}

impl From<&str> for Unread {
    fn from(why: &str) -> Unread {
        Unread::Damaged(why.to_string())
    }
}

fn header_unchecked(path: &Path) -> Result<SnapshotHeader, Unread> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot be opened: {e}"))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; 12];
    f.read_exact(&mut head)
        .map_err(|_| "is too short to be a snapshot".to_string())?;
    if &head[..8] != MAGIC {
        return Err("is not a snapshot".into());
    }
    let format = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
    if format != SNAPSHOT_FORMAT {
        return Err(Unread::Format(format!(
            "is of snapshot format {format}; this build reads {SNAPSHOT_FORMAT}"
        )));
    }
    if len < 12 + 4 + 36 {
        return Err("is cut short".into());
    }
    let mut tail = [0u8; 36];
    f.seek(SeekFrom::Start(len - 36))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| format!("cannot be read: {e}"))?;
    let header_len = u64::from(u32::from_be_bytes(tail[..4].try_into().expect("4 bytes")));
    if header_len + 36 + 12 > len {
        return Err("is corrupt (header length)".into());
    }
    let mut header = vec![0u8; header_len as usize];
    f.seek(SeekFrom::Start(len - 36 - header_len))
        .and_then(|_| f.read_exact(&mut header))
        .map_err(|e| format!("cannot be read: {e}"))?;
    serde_json::from_slice(&header)
        .map_err(|e| Unread::Damaged(format!("is corrupt (header: {e})")))
}

/// One frame's keys and values.
type Frame = Vec<(Vec<u8>, Vec<u8>)>;

/// A snapshot being restored, frame by frame (see `Projector::restore_leg`).
pub struct Restoring {
    path: PathBuf,
    reader: Hashing<BufReader<std::fs::File>>,
    frames_done: bool,
    pub header: SnapshotHeader,
}

impl Restoring {
    /// Opens a snapshot whose header reads (see `read_header`).
    pub fn open(path: &Path) -> Result<Restoring, String> {
        let header = read_header(path)?;
        let file = std::fs::File::open(path).map_err(|e| format!("cannot be opened: {e}"))?;
        let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, file));
        let mut head = [0u8; 12];
        reader.read_exact(&mut head).map_err(|e| e.to_string())?;
        Ok(Restoring {
            path: path.to_path_buf(),
            reader,
            frames_done: false,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the rest of the file without restoring it: `Ok` when every
    /// frame reads and its SHA-256 is the one it carries.
    pub fn check(mut self) -> Result<SnapshotHeader, String> {
        while self.next_frame()?.is_some() {}
        Ok(self.header)
    }

    pub fn done(&self) -> bool {
        self.frames_done
    }

    /// The next frame's keys and values; `None` after the last, once the
    /// file's SHA-256 has been checked.
    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let corrupt = |what: &dyn std::fmt::Display| format!("is corrupt ({what})");
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len).map_err(|e| corrupt(&e))?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            // the header, its length, then the checksum of all before it
            let mut rest = Vec::new();
            self.reader
                .inner
                .read_to_end(&mut rest)
                .map_err(|e| corrupt(&e))?;
            if rest.len() < 36 {
                return Err(corrupt(&"cut short"));
            }
            let (hashed, sum) = rest.split_at(rest.len() - 32);
            sha2::Digest::update(&mut self.reader.hasher, hashed);
            if self.reader.take_sum().as_slice() != sum {
                return Err(corrupt(&"its SHA-256 is not the one it carries"));
            }
            self.frames_done = true;
            return Ok(None);
        }
        let mut frame = vec![0u8; len];
        self.reader
            .read_exact(&mut frame)
            .map_err(|e| corrupt(&e))?;
        let plain = lz4_flex::decompress_size_prepended(&frame).map_err(|e| corrupt(&e))?;
        postcard::from_bytes(&plain)
            .map(Some)
            .map_err(|e| corrupt(&e))
    }
}

impl Projector {
    /// Writes a snapshot of the state as it stands (call it between
    /// batches) into `dir`, and returns its path and header. The file is
    /// written beside its final name and renamed when complete and synced,
    /// so a snapshot is whole or absent.
    pub fn write_snapshot(
        &self,
        dir: &Path,
        reason: &str,
    ) -> Result<(PathBuf, SnapshotHeader), ProjectorError> {
        let io = |e: std::io::Error| ProjectorError::Io {
            path: dir.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let offsets: u64 = self.positions.iter().map(|(_, o)| o).sum();
        let name = format!("{offsets:020}{SUFFIX}");
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, file));
        let result = (|| {
            out.write_all(MAGIC).map_err(io)?;
            out.write_all(&SNAPSHOT_FORMAT.to_be_bytes()).map_err(io)?;
            let mut digest = DigestState::default();
            let mut keys = 0u64;
            let mut frame: Vec<(sled::IVec, sled::IVec)> = Vec::new();
            let mut frame_bytes = 0usize;
            // A frame's records go into the digest as it is written.
            let mut write_frame = |frame: &mut Vec<(sled::IVec, sled::IVec)>| {
                self.hash_chunk(frame, &mut digest)?;
                let pairs: Vec<(&[u8], &[u8])> = frame
                    .iter()
                    .map(|(k, v)| (k.as_ref(), v.as_ref()))
                    .collect();
                let plain = postcard::to_stdvec(&pairs).expect("pairs serialise");
                let packed = lz4_flex::compress_prepend_size(&plain);
                let len = u32::try_from(packed.len()).expect("a frame is a few MiB");
                out.write_all(&len.to_be_bytes()).map_err(io)?;
                out.write_all(&packed).map_err(io)?;
                frame.clear();
                Ok::<_, ProjectorError>(())
            };
            for kv in self.tree.iter() {
                let (k, v) = kv.map_err(|e| self.storage(e))?;
                frame_bytes += k.len() + v.len();
                frame.push((k, v));
                keys += 1;
                if frame_bytes >= FRAME_BYTES {
                    write_frame(&mut frame)?;
                    frame_bytes = 0;
                }
            }
            if !frame.is_empty() {
                write_frame(&mut frame)?;
            }
            out.write_all(&0u32.to_be_bytes()).map_err(io)?;
            let latest_business_date = self.latest_date;
            let header = SnapshotHeader {
                projection_format: FORMAT,
                positions: self.positions.iter().collect(),
                recorded_through: self.through.clone(),
                latest_business_date,
                digest: digest.finish(),
                keys,
                reason: reason.to_string(),
                taken_at: now_rfc3339(),
            };
            let json = serde_json::to_vec(&header).expect("the header serialises");
            out.write_all(&json).map_err(io)?;
            let json_len = u32::try_from(json.len()).expect("a header is small");
            out.write_all(&json_len.to_be_bytes()).map_err(io)?;
            let sum = out.take_sum();
            out.inner.write_all(&sum).map_err(io)?;
            let file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(header)
        })();
        match result {
            Ok(header) => Ok((path, header)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Restores frames of `from` into this (fresh) store until about
    /// `bytes_max` bytes are written or the snapshot ends; then the caller
    /// reopens the store (sled keeps what an open store wrote in memory)
    /// and goes on. `Err` says what is wrong with the file: the state
    /// restored so far is then to be thrown away.
    pub fn restore_leg(&mut self, from: &mut Restoring, bytes_max: u64) -> Result<(), String> {
        self.forget_rows();
        let mut written = 0u64;
        while !from.done() && written < bytes_max {
            let Some(frame) = from.next_frame()? else {
                break;
            };
            let mut batch = sled::Batch::default();
            for (k, v) in frame {
                written += (k.len() + v.len()) as u64;
                batch.insert(k, v);
            }
            self.tree
                .apply_batch(batch)
                .map_err(|e| format!("restoring it failed: {e}"))?;
        }
        self.tree
            .flush()
            .map_err(|e| format!("restoring it failed: {e}"))?;
        Ok(())
    }
}

/// Deletes the oldest snapshots of `dir` beyond the newest `keep`, and
/// leftovers of writes that never completed.
pub fn prune(dir: &Path, keep: usize) {
    let found = list(dir);
    let readable: Vec<&Found> = found.iter().filter(|f| f.header.is_ok()).collect();
    let excess = readable.len().saturating_sub(keep);
    for f in readable.iter().take(excess) {
        if let Err(e) = std::fs::remove_file(&f.path) {
            tracing::warn!(path = %f.path.display(), error = %e, "an old snapshot could not be deleted");
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let leftover = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
                && !p
                    .to_str()
                    .is_some_and(|s| s.contains(&format!(".{}.tmp", std::process::id())));
            if leftover {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// This machine's clock, RFC 3339 UTC, to the second.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}
