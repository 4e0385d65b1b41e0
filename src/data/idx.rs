//! IDX format (MNIST, Fashion-MNIST): big-endian header `0 0 type ndim`, `ndim` u32 dims, payload.
//! Gzip is detected by its magic bytes, so `.gz` and raw files both work whatever their names.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Largest decompressed IDX file we accept (guards against gzip bombs and absurd headers).
pub const MAX_IDX_BYTES: u64 = 1 << 31;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdxError {
    #[error("file is {0} bytes, too short for an IDX header")]
    TooShort(usize),
    #[error("bad magic: first two bytes are {0:#04x} {1:#04x}, an IDX file starts with 0x00 0x00")]
    BadMagic(u8, u8),
    #[error("element type {0:#04x} is not supported (only unsigned bytes, 0x08)")]
    UnsupportedType(u8),
    #[error("{0} dimensions; expected {1}")]
    WrongRank(usize, usize),
    #[error("header declares dimensions {dims:?}: {bytes} payload bytes, more than the {max} allowed")]
    TooLarge { dims: Vec<u64>, bytes: u128, max: u64 },
    #[error("payload is {actual} bytes but the header dimensions {dims:?} need exactly {expected}")]
    PayloadLength { dims: Vec<usize>, expected: usize, actual: usize },
    #[error("a dimension is zero: {0:?}")]
    ZeroDim(Vec<usize>),
    #[error("gzip stream is corrupt or truncated: {0}")]
    Gzip(String),
    #[error("decompressed size exceeds {0} bytes")]
    Oversized(u64),
}

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parse IDX bytes (already decompressed). `rank` is the number of dimensions the caller needs.
pub fn parse(bytes: &[u8], rank: usize) -> Result<IdxArray, IdxError> {
    if bytes.len() < 4 {
        return Err(IdxError::TooShort(bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxError::BadMagic(bytes[0], bytes[1]));
    }
    if bytes[2] != 0x08 {
        return Err(IdxError::UnsupportedType(bytes[2]));
    }
    let ndim = bytes[3] as usize;
    if ndim != rank {
        return Err(IdxError::WrongRank(ndim, rank));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(IdxError::TooShort(bytes.len()));
    }
    let dims64: Vec<u64> =
        (0..ndim).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as u64).collect();
    // Checked in u128 before any allocation: a header may claim 2^32 images.
    let need: u128 = dims64.iter().map(|&d| d as u128).product();
    if need > MAX_IDX_BYTES as u128 {
        return Err(IdxError::TooLarge { dims: dims64, bytes: need, max: MAX_IDX_BYTES });
    }
    let dims: Vec<usize> = dims64.iter().map(|&d| d as usize).collect();
    if dims.contains(&0) {
        return Err(IdxError::ZeroDim(dims));
    }
    let expected = need as usize;
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(IdxError::PayloadLength { dims, expected, actual });
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Serialise to raw IDX bytes.
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    assert_eq!(dims.iter().product::<usize>(), data.len(), "IDX dims do not match data");
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Decompress if the bytes start with the gzip magic, with a size cap.
pub fn maybe_gunzip(raw: Vec<u8>) -> Result<Vec<u8>, IdxError> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        // Sized from the gzip trailer (the length mod 2³², capped): growing the buffer by doubling
        // copied and page-faulted ~100 MB per MNIST load. A wrong trailer only mis-sizes the
        // first allocation; the cap below still holds.
        let trailer =
            raw.len().checked_sub(4).map_or(0, |i| u32::from_le_bytes(raw[i..].try_into().unwrap_or_default()));
        let bound = (raw.len() as u64).saturating_mul(1032); // deflate's largest ratio
        let mut out = Vec::with_capacity((trailer as u64).min(bound).min(MAX_IDX_BYTES + 1) as usize);
        GzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| IdxError::Gzip(e.to_string()))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(IdxError::Oversized(MAX_IDX_BYTES));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Read an IDX file (raw or gzip) of the given rank; errors name the file.
pub fn read(path: &Path, rank: usize) -> anyhow::Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let bytes = maybe_gunzip(raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(&bytes, rank).map_err(|e| anyhow::anyhow!("{}: not a valid IDX file: {e}", path.display()))
}

/// Write an IDX file, gzip-compressed when the name ends in `.gz`, atomically.
pub fn write(path: &Path, dims: &[usize], data: &[u8]) -> anyhow::Result<()> {
    let raw = encode(dims, data);
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&raw)?;
        enc.finish()?
    } else {
        raw
    };
    crate::util::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(&[2, 3, 2], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    }

    #[test]
    fn round_trip_raw_and_gz() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"] {
            let p = dir.path().join(name);
            write(&p, &[2, 3, 2], &[9; 12]).unwrap();
            let a = read(&p, 3).unwrap();
            assert_eq!(a.dims, vec![2, 3, 2]);
            assert_eq!(a.data, vec![9; 12]);
        }
        // gz really is compressed
        assert_eq!(std::fs::read(dir.path().join("a-idx3-ubyte.gz")).unwrap()[0], 0x1f);
    }

    /// The output buffer is sized once from the gzip trailer; a trailer that lies about the size
    /// reserves no more than deflate could produce from the input, and the lie is an error.
    #[test]
    fn gunzip_sizes_its_buffer_from_the_trailer() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write as _;
        let payload = encode(&[100, 1000], &(0..100_000u32).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&payload).unwrap();
        let gz = enc.finish().unwrap();
        let out = maybe_gunzip(gz.clone()).unwrap();
        assert_eq!(out, payload);
        assert_eq!(out.capacity(), payload.len(), "grown instead of sized from the trailer");
        let mut lying = gz;
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(maybe_gunzip(lying), Err(IdxError::Gzip(_))));
    }

    #[test]
    fn every_header_corruption_is_named() {
        let good = sample();
        assert!(parse(&good, 3).is_ok());
        assert_eq!(parse(&good[..3], 3), Err(IdxError::TooShort(3)));
        let mut m = good.clone();
        m[0] = 7;
        assert_eq!(parse(&m, 3), Err(IdxError::BadMagic(7, 0)));
        let mut t = good.clone();
        t[2] = 0x0D;
        assert_eq!(parse(&t, 3), Err(IdxError::UnsupportedType(0x0D)));
        assert_eq!(parse(&good, 1), Err(IdxError::WrongRank(3, 1)));
        assert!(matches!(parse(&good[..10], 3), Err(IdxError::TooShort(10))));
        assert!(matches!(
            parse(&good[..good.len() - 1], 3),
            Err(IdxError::PayloadLength { expected: 12, actual: 11, .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(parse(&long, 3), Err(IdxError::PayloadLength { actual: 13, .. })));
        // A header claiming 2^32-1 images of 28x28 is refused before allocating.
        let huge = encode_header(&[u32::MAX, 28, 28]);
        assert!(matches!(parse(&huge, 3), Err(IdxError::TooLarge { .. })));
        let zero = encode_header(&[0, 28, 28]);
        assert!(matches!(parse(&zero, 3), Err(IdxError::ZeroDim(_))));
        let gz_trunc = {
            use flate2::{Compression, write::GzEncoder};
            use std::io::Write;
            let mut e = GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(&good).unwrap();
            let mut v = e.finish().unwrap();
            v.truncate(v.len() / 2);
            v
        };
        assert!(matches!(maybe_gunzip(gz_trunc), Err(IdxError::Gzip(_))));
    }

    fn encode_header(dims: &[u32]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn error_message_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken-idx3-ubyte");
        std::fs::write(&p, [0u8, 0, 8, 3, 0, 0]).unwrap();
        let msg = read(&p, 3).unwrap_err().to_string();
        assert!(msg.contains("broken-idx3-ubyte") && msg.contains("too short"), "{msg}");
    }
}
