//! An append-only file of checksummed frames, each append durable as a
//! whole or not at all: what the embedded log and the write model store.
//!
//! Frame: `magic "CLF1" | flags u8 | kind u8 | 0 u16 | len u32 | crc u32 |
//! payload[len]` (big-endian), the CRC-32C over the first 12 header bytes
//! and the payload. The last frame of an append carries the COMMIT flag.
//! An append writes its frames at the end of the file and syncs them; only
//! then is it acknowledged. If writing or syncing fails, the file is cut
//! back to where it was.
//!
//! Opening scans the headers. Whatever follows the last COMMIT frame (an
//! append torn by a crash), and the last append itself when one of its
//! frames fails its checksum (pages a crash left unwritten), is cut off:
//! it was never acknowledged. A checksum that fails anywhere else is
//! corruption, reported with the file and byte where it is, never read
//! as data.
//!
//! One process at a time: the owner of a frame file holds a `DirLock` on
//! its directory (an exclusive lock on `DIR/LOCK`) while it is open.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::faults::{self, Point};

const MAGIC: &[u8; 4] = b"CLF1";
const HEADER_LEN: usize = 16;
const COMMIT: u8 = 1;
/// No frame is this large: a longer length is a torn or corrupt header.
pub const FRAME_BYTES_MAX: usize = 256 << 20;

/// Why a frame file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is corrupt at byte {at}: {detail}")]
    Corrupt {
        path: String,
        at: u64,
        detail: String,
    },
    #[error("{path} is locked: in use by another process")]
    Locked { path: String },
    #[error("{path}: an earlier append failed and could not be undone; reopen it")]
    Broken { path: String },
}

/// The frames a file holds, each with the first bytes of its payload.
pub type Scanned = Vec<(FrameInfo, Vec<u8>)>;

/// A frame as scanned: where it is and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Byte offset of the frame's header in the file.
    pub at: u64,
    pub kind: u8,
    pub len: u32,
}

pub struct FrameFile {
    path: PathBuf,
    file: File,
    /// Length of the file up to the last committed frame.
    len: u64,
    broken: bool,
}

fn crc(header: &[u8], payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&header[..12]);
    crc32c::crc32c_append(c, payload)
}

fn header(kind: u8, flags: u8, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = flags;
    h[5] = kind;
    let len = u32::try_from(payload.len()).expect("frames are below 4 GiB");
    h[8..12].copy_from_slice(&len.to_be_bytes());
    let c = crc(&h, payload);
    h[12..16].copy_from_slice(&c.to_be_bytes());
    h
}

impl FrameFile {
    /// Opens (creating) the frame file at `path`, cutting off a torn last
    /// append. The caller holds the `DirLock` of its directory. Returns the
    /// frames it holds, and `peek` bytes of each frame's payload (for the
    /// caller's index).
    pub fn open(path: &Path, peek: usize) -> Result<(FrameFile, Scanned), FrameError> {
        let io = |source| FrameError::Io {
            path: path.display().to_string(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut f = FrameFile {
            path: path.to_path_buf(),
            file,
            len: 0,
            broken: false,
        };
        let frames = f.recover(peek)?;
        Ok((f, frames))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> FrameError {
        FrameError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, at: u64, detail: impl Into<String>) -> FrameError {
        FrameError::Corrupt {
            path: self.path.display().to_string(),
            at,
            detail: detail.into(),
        }
    }

    /// Scans every header; keeps the frames up to the last COMMIT, and the
    /// last append only if its checksums hold; cuts the rest off.
    fn recover(&mut self, peek: usize) -> Result<Scanned, FrameError> {
        let file_len = self.file.metadata().map_err(|e| self.io(e))?.len();
        let mut frames: Vec<(FrameInfo, Vec<u8>, bool)> = Vec::new();
        let mut at = 0u64;
        let mut h = [0u8; HEADER_LEN];
        while at + HEADER_LEN as u64 <= file_len {
            self.file
                .read_exact_at(&mut h, at)
                .map_err(|e| self.io(e))?;
            let len = u32::from_be_bytes(h[8..12].try_into().expect("4 bytes"));
            let end = at + HEADER_LEN as u64 + u64::from(len);
            if &h[..4] != MAGIC || len as usize > FRAME_BYTES_MAX || end > file_len {
                break;
            }
            let mut head = vec![0u8; peek.min(len as usize)];
            self.file
                .read_exact_at(&mut head, at + HEADER_LEN as u64)
                .map_err(|e| self.io(e))?;
            let info = FrameInfo {
                at,
                kind: h[5],
                len,
            };
            frames.push((info, head, h[4] & COMMIT != 0));
            at = end;
        }
        // The frames of the last append begin after the one-but-last COMMIT.
        let Some(last_commit) = frames.iter().rposition(|f| f.2) else {
            self.cut(0, file_len)?;
            return Ok(Vec::new());
        };
        let start = frames[..last_commit]
            .iter()
            .rposition(|f| f.2)
            .map_or(0, |i| i + 1);
        let mut keep = last_commit + 1;
        for (info, _, _) in &frames[start..=last_commit] {
            if self.checked(*info).is_err() {
                tracing::info!(path = %self.path.display(), at = info.at, "the last append did not reach the disk whole; cut off");
                keep = start;
                break;
            }
        }
        frames.truncate(keep);
        let good = frames
            .last()
            .map_or(0, |(f, _, _)| f.at + HEADER_LEN as u64 + u64::from(f.len));
        self.cut(good, file_len)?;
        Ok(frames.into_iter().map(|(f, head, _)| (f, head)).collect())
    }

    /// Cuts the file back to `good` bytes when it is longer.
    fn cut(&mut self, good: u64, file_len: u64) -> Result<(), FrameError> {
        if file_len > good {
            tracing::info!(path = %self.path.display(), from = file_len, to = good, "cutting off an unacknowledged tail");
            self.file.set_len(good).map_err(|e| self.io(e))?;
            self.file.sync_data().map_err(|e| self.io(e))?;
        }
        self.len = good;
        Ok(())
    }

    /// The payload of a frame, its checksum verified.
    pub fn checked(&self, info: FrameInfo) -> Result<Vec<u8>, FrameError> {
        let mut buf = vec![0u8; HEADER_LEN + info.len as usize];
        self.file
            .read_exact_at(&mut buf, info.at)
            .map_err(|e| self.io(e))?;
        let (h, payload) = buf.split_at(HEADER_LEN);
        let stored = u32::from_be_bytes(h[12..16].try_into().expect("4 bytes"));
        if &h[..4] != MAGIC || crc(h, payload) != stored {
            return Err(self.corrupt(info.at, "the frame's checksum does not match its bytes"));
        }
        Ok(payload.to_vec())
    }

    /// Appends `frames` (kind, payload) as one append: written, synced,
    /// and only then counted; on failure the file is cut back. Returns
    /// where each frame landed.
    pub fn append(&mut self, frames: &[(u8, &[u8])]) -> Result<Vec<FrameInfo>, FrameError> {
        if self.broken {
            return Err(FrameError::Broken {
                path: self.path.display().to_string(),
            });
        }
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let start = self.len;
        let mut bytes = Vec::with_capacity(frames.iter().map(|f| HEADER_LEN + f.1.len()).sum());
        let mut infos = Vec::with_capacity(frames.len());
        for (i, (kind, payload)) in frames.iter().enumerate() {
            let flags = if i + 1 == frames.len() { COMMIT } else { 0 };
            infos.push(FrameInfo {
                at: start + bytes.len() as u64,
                kind: *kind,
                len: payload.len() as u32,
            });
            bytes.extend_from_slice(&header(*kind, flags, payload));
            bytes.extend_from_slice(payload);
        }
        let written = faults::check(Point::FileWrite)
            .and_then(|()| self.file.write_all_at(&bytes, start))
            .and_then(|()| faults::check(Point::FileSync))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if faults::crashed() {
                // A test standing in for a process that died here: what was
                // written stays as it is, unacknowledged.
                self.broken = true;
                return Err(self.io(e));
            }
            // Cut back what part of the append may have reached the file,
            // so that it is durable as a whole or not at all.
            if self
                .file
                .set_len(start)
                .and_then(|()| self.file.sync_data())
                .is_err()
            {
                self.broken = true;
            }
            return Err(self.io(e));
        }
        self.len = start + bytes.len() as u64;
        Ok(infos)
    }

    /// Reads every committed frame in order, checksums verified.
    pub fn frames<'a>(
        &'a self,
        infos: &'a [FrameInfo],
    ) -> impl Iterator<Item = Result<(FrameInfo, Vec<u8>), FrameError>> + 'a {
        infos.iter().map(|i| self.checked(*i).map(|p| (*i, p)))
    }
}

/// An exclusive lock on a directory of the ledger (`DIR/LOCK`), held while
/// its files are open; the kernel releases it when the process ends.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (creating it), or says that another process holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, FrameError> {
        std::fs::create_dir_all(dir).map_err(|source| FrameError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        lock_dir(dir).map(|file| DirLock { _file: file })
    }
}

fn lock_dir(dir: &Path) -> Result<File, FrameError> {
    let lock_path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| FrameError::Io {
            path: lock_path.display().to_string(),
            source,
        })?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(FrameError::Locked {
            path: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(FrameError::Io {
            path: lock_path.display().to_string(),
            source,
        }),
    }
}

/// Reads a whole file (for tests and tools that look at raw bytes).
pub fn raw_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> (FrameFile, Scanned) {
        FrameFile::open(path, 4).unwrap()
    }

    #[test]
    fn appends_survive_reopen_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        {
            let (mut f, frames) = open(&path);
            assert!(frames.is_empty());
            f.append(&[(1, b"aaaa-1"), (1, b"aaaa-2")]).unwrap();
            f.append(&[(2, b"bbbb")]).unwrap();
        }
        // a torn append: a frame without COMMIT, then half a frame
        let good = std::fs::metadata(&path).unwrap().len();
        let mut tail = header(1, 0, b"cccc").to_vec();
        tail.extend_from_slice(b"cccc");
        tail.extend_from_slice(&header(1, COMMIT, b"dddd")[..9]);
        let mut all = raw_bytes(&path).unwrap();
        all.extend_from_slice(&tail);
        std::fs::write(&path, &all).unwrap();
        let (f, frames) = open(&path);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].1, b"bbbb");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        let payloads: Vec<Vec<u8>> = f
            .frames(&frames.iter().map(|x| x.0).collect::<Vec<_>>())
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(
            payloads,
            vec![b"aaaa-1".to_vec(), b"aaaa-2".to_vec(), b"bbbb".to_vec()]
        );
    }

    #[test]
    fn a_last_append_that_did_not_reach_the_disk_whole_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        {
            let (mut f, _) = open(&path);
            f.append(&[(1, b"first")]).unwrap();
            f.append(&[(1, b"second-a"), (1, b"second-b")]).unwrap();
        }
        let mut all = raw_bytes(&path).unwrap();
        let n = all.len();
        all[n - 3] ^= 0xff; // a page of the last append never written
        std::fs::write(&path, &all).unwrap();
        let (_f, frames) = open(&path);
        assert_eq!(frames.len(), 1, "the whole last append is dropped");
    }

    #[test]
    fn a_flipped_bit_in_an_acknowledged_frame_is_reported_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        {
            let (mut f, _) = open(&path);
            f.append(&[(1, b"first")]).unwrap();
            f.append(&[(1, b"second")]).unwrap();
        }
        let mut all = raw_bytes(&path).unwrap();
        all[HEADER_LEN + 1] ^= 0x04; // inside the first frame's payload
        std::fs::write(&path, &all).unwrap();
        let (f, frames) = open(&path);
        let err = f.checked(frames[0].0).unwrap_err();
        assert!(err.to_string().contains("corrupt at byte 0"), "{err}");
        assert!(err.to_string().contains("f.log"), "{err}");
    }

    #[test]
    fn a_second_locker_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).map(|_| ()).unwrap_err();
        assert!(matches!(err, FrameError::Locked { .. }), "{err}");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
