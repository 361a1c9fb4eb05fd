//! Fault injection at the ledger's write points, for tests: with the
//! `faults` feature, a test arms a fault at the N-th write point reached
//! (counting every point below), and that write fails as a full disk or a
//! dying disk would. Without the feature every check is a no-op.

/// A place where the ledger writes to its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Writing an append's frames to a frame file (embedded log, write model).
    FileWrite,
    /// Syncing them to disk.
    FileSync,
    /// An atomic batch of the projections (sled).
    StoreBatch,
    /// Flushing the projections (sled).
    StoreFlush,
}

#[cfg(feature = "faults")]
mod armed {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Write points reached since the last `arm` or `count`.
    pub static REACHED: AtomicU64 = AtomicU64::new(0);
    /// The point that fails (1 = the first reached); 0 = none.
    pub static AT: AtomicU64 = AtomicU64::new(0);
    /// Whether the failing write stands for the process dying there (no
    /// clean-up after it) rather than an error it can handle.
    pub static CRASH: AtomicBool = AtomicBool::new(false);
    pub static FIRED: AtomicBool = AtomicBool::new(false);

    pub fn check(point: super::Point) -> std::io::Result<()> {
        let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
        if AT.load(Ordering::SeqCst) == n {
            FIRED.store(true, Ordering::SeqCst);
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("fault injected at write point {n} ({point:?}): no space left on device"),
            ));
        }
        Ok(())
    }
}

/// Fails when a test armed a fault at this write point.
#[inline]
pub fn check(point: Point) -> std::io::Result<()> {
    #[cfg(feature = "faults")]
    {
        armed::check(point)
    }
    #[cfg(not(feature = "faults"))]
    {
        let _ = point;
        Ok(())
    }
}

/// Whether the fault that fired stands for the process dying there.
#[inline]
pub fn crashed() -> bool {
    #[cfg(feature = "faults")]
    {
        use std::sync::atomic::Ordering;
        armed::FIRED.load(Ordering::SeqCst) && armed::CRASH.load(Ordering::SeqCst)
    }
    #[cfg(not(feature = "faults"))]
    {
        false
    }
}

/// Counts write points from now on, with no fault.
#[cfg(feature = "faults")]
pub fn count() {
    use std::sync::atomic::Ordering;
    armed::AT.store(0, Ordering::SeqCst);
    armed::FIRED.store(false, Ordering::SeqCst);
    armed::REACHED.store(0, Ordering::SeqCst);
}

/// The write points reached since `count` or `arm`.
#[cfg(feature = "faults")]
pub fn reached() -> u64 {
    armed::REACHED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Fails the `n`-th write point reached from now on (1 = the next one);
/// `crash`: as if the process died there, leaving what it wrote.
#[cfg(feature = "faults")]
pub fn arm(n: u64, crash: bool) {
    use std::sync::atomic::Ordering;
    armed::REACHED.store(0, Ordering::SeqCst);
    armed::FIRED.store(false, Ordering::SeqCst);
    armed::CRASH.store(crash, Ordering::SeqCst);
    armed::AT.store(n, Ordering::SeqCst);
}

/// Whether the armed fault fired.
#[cfg(feature = "faults")]
pub fn fired() -> bool {
    armed::FIRED.load(std::sync::atomic::Ordering::SeqCst)
}
