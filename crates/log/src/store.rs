//! How every sled store of the ledger is opened, and how a projection
//! stores the log positions it has applied.

use std::path::Path;

/// sled's page cache per store. The stores are written in large batches
/// and read mostly sequentially; a bigger cache bought nothing measurable
/// and three 1 GiB defaults would dominate a process's memory.
pub const CACHE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Opens (creating if needed) a sled store with the ledger's settings.
pub fn open(path: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES_MAX)
        .mode(sled::Mode::HighThroughput)
        .open()
}

/// The key under which a projection stores its next offset for a
/// partition: `prefix` + partition (u32 BE). The value is the offset (u64 BE).
pub fn position_key(prefix: &[u8], partition: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Reads the positions stored under `prefix`. `Err` says what is malformed.
pub fn read_positions(tree: &sled::Tree, prefix: &[u8]) -> Result<crate::Positions, StoreError> {
    let mut positions = crate::Positions::new();
    for kv in tree.scan_prefix(prefix) {
        let (k, v) = kv?;
        let partition = k[prefix.len()..]
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::Malformed("position key"))?;
        let offset = v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Malformed("position value"))?;
        positions.set(partition, offset);
    }
    Ok(positions)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Sled(#[from] sled::Error),
    #[error("malformed {0}")]
    Malformed(&'static str),
}
