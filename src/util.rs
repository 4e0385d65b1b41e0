//! Small shared helpers: atomic file writes and the seeded random streams.

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` so that a reader sees either the old file or the complete new one:
/// temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_keeping(path, None, bytes)
}

/// `write_atomic`, and the file it replaces is kept as `keep` (renamed once the new file is
/// complete on disk): a reader finds the new file, or the old one at `path` or at `keep`.
pub fn write_atomic_keeping(path: &Path, keep: Option<&Path>, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // pid + a process-wide counter: threads of one process writing one path each get their own
    // temp file. The `.<name>.tmp-` shape is what `RunDir::remove_stale_temp_files` sweeps.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        if fault("enospc") {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        if fault("slow-write") {
            // Widens the window between the temp file and the rename for kill tests.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        if let Some(keep) = keep
            && path.exists()
        {
            std::fs::rename(path, keep)?;
        }
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// latentlab's binary container (checkpoints, feature networks, decoded-folder caches): 8 magic
/// bytes, then each section as a little-endian u64 length and its bytes, then the sha256 of
/// everything before it — so truncation and corruption are always detected.
pub fn frame(magic: &[u8; 8], sections: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest;
    let total: usize = sections.iter().map(|s| 8 + s.len()).sum();
    let mut out = Vec::with_capacity(8 + total + 32);
    out.extend_from_slice(magic);
    for sec in sections {
        out.extend_from_slice(&(sec.len() as u64).to_le_bytes());
        out.extend_from_slice(sec);
    }
    let digest = sha2::Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// The sections of a `frame`d file, one per name in `names`; errors say which part is wrong.
/// `what` names the kind of file for the bad-magic message (e.g. "checkpoint").
pub fn unframe<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    what: &str,
    names: &[&str],
) -> std::result::Result<Vec<&'a [u8]>, String> {
    use sha2::Digest;
    if bytes.len() < 8 + 8 * names.len() + 32 || &bytes[..8] != magic {
        return Err(format!("not a latentlab {what} (bad magic or too short)"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if sha2::Sha256::digest(body)[..] != sum[..] {
        return Err("checksum mismatch: the file is truncated or corrupted".into());
    }
    let mut pos = 8;
    let mut secs = Vec::with_capacity(names.len());
    for name in names {
        if pos + 8 > body.len() {
            return Err(format!("{name} section header past end of file"));
        }
        let len = u64::from_le_bytes(body[pos..pos + 8].try_into().expect("8 bytes"));
        pos += 8;
        if len > (body.len() - pos) as u64 {
            return Err(format!("{name} section claims {len} bytes, only {} remain", body.len() - pos));
        }
        secs.push(&body[pos..pos + len as usize]);
        pos += len as usize;
    }
    if pos != body.len() {
        return Err(format!("{} bytes after the last section ({} expected)", body.len() - pos, names.len()));
    }
    Ok(secs)
}

/// Fault injection for the robustness tests: `LATENTLAB_FAULT` is a comma-separated list of
/// faults to simulate — `enospc` (every atomic write fails with "No space left on device"),
/// `slow-write` (a pause before each rename), `nan-at-step-N` (the loss of step N is NaN, once per
/// process). Unset in normal use; read once per process.
pub fn fault(name: &str) -> bool {
    // Read once: `fault` is consulted on every training step.
    static FAULTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FAULTS
        .get_or_init(|| {
            std::env::var("LATENTLAB_FAULT")
                .map(|v| v.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|f| f == name)
}

/// Set by the Ctrl-C handler; the training loop saves a checkpoint and stops at the next step.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Install the Ctrl-C handler: the first press asks the loop to stop cleanly, a second exits now.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without waiting for the checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: saving a checkpoint after this step (press Ctrl-C again to quit at once)");
    });
}

/// Purposes of the independent random streams derived from the run seed. Each (purpose, index)
/// pair gets its own generator, so the state of all randomness at step `s` is just `s`: resuming
/// needs no RNG state beyond the step counter, and a resumed run draws exactly the same numbers.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    Shuffle = 1,
    Noise = 2,
    Binarize = 3,
    FixedNoise = 4,
    Eval = 5,
    Sample = 6,
    Init = 7,
    Static = 8,
    Caption = 9,
}

/// A generator for `(seed, purpose, index)`; splitmix-style mixing keeps nearby seeds unrelated.
pub fn rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&mix(seed).to_le_bytes());
    s[8..16].copy_from_slice(&mix(stream as u64 ^ 0x9E37_79B9_7F4A_7C15).to_le_bytes());
    s[16..24].copy_from_slice(&mix(index.wrapping_add(0x5851_F42D_4C95_7F2D)).to_le_bytes());
    s[24..].copy_from_slice(b"latentlb");
    ChaCha8Rng::from_seed(s)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` standard-normal draws.
pub fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// The user's cache folder: `$LATENTLAB_CACHE`, else `$XDG_CACHE_HOME/latentlab`, else
/// `~/.cache/latentlab`.
pub fn user_cache_dir() -> Option<std::path::PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    var("LATENTLAB_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("latentlab")))
        .or_else(|| var("HOME").map(|p| p.join(".cache/latentlab")))
}

/// Human-readable size, for messages.
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", U[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = rng(1, Stream::Noise, 5).next_u64();
        assert_eq!(a, rng(1, Stream::Noise, 5).next_u64());
        assert_ne!(a, rng(1, Stream::Noise, 6).next_u64());
        assert_ne!(a, rng(2, Stream::Noise, 5).next_u64());
        assert_ne!(a, rng(1, Stream::Shuffle, 5).next_u64());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"first version").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Threads of one process writing one path at once: every write succeeds and the file ends up
    /// as exactly one writer's bytes (with pid-only temp names they shared a temp file, so a
    /// rename could fail or publish another thread's half-written bytes).
    #[test]
    fn concurrent_atomic_writes_to_one_path_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shared.bin");
        let content = |t: usize, i: usize| vec![(t * 31 + i) as u8; 4096 + 97 * t + i];
        std::thread::scope(|s| {
            for t in 0..8 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..25 {
                        write_atomic(p, &content(t, i)).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert!((0..8).any(|t| (0..25).any(|i| got == content(t, i))), "final file is no writer's bytes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp files left behind");
    }
}
