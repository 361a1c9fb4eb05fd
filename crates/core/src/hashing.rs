//! SHA-256 of what passes through a reader or a writer, so that a file is
//! read (or written) once and hashed on the way.

use sha2::{Digest, Sha256};

/// Hashes every byte read from or written to `inner`.
pub struct Hashing<T> {
    pub inner: T,
    pub hasher: Sha256,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The SHA-256 of what passed so far; the hasher starts over.
    pub fn take_sum(&mut self) -> [u8; 32] {
        std::mem::take(&mut self.hasher).finalize().into()
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn reading_and_writing_hash_what_passed() {
        let expected: [u8; 32] = Sha256::digest(b"clearing").into();
        let mut r = Hashing::new(&b"clearing"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.take_sum(), expected);
        let mut w = Hashing::new(Vec::new());
        w.write_all(b"clear").unwrap();
        w.write_all(b"ing").unwrap();
        assert_eq!(w.take_sum(), expected);
        assert_eq!(w.inner, b"clearing");
        assert_ne!(w.take_sum(), expected, "the hasher starts over");
    }
}
