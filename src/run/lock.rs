//! One writer per run folder: an exclusive advisory lock on `<run>/.lock`, held while a process
//! trains the run. The OS releases it when the process exits, however it exits (a SIGKILL leaves
//! no stale lock); the file keeps the holder's pid so a refused writer can say who holds it.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The held lock; dropping it releases the run folder.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(run: &Path) -> Result<RunLock> {
        let path = run.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the run lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                bail!(
                    "run folder {} is being written by another latentlab process{}; wait for it to finish \
                     (or stop it) before training or resuming this run",
                    run.display(),
                    if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock run folder {}", run.display()));
            }
        }
        // Only the holder writes the pid.
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(RunLock { _file: file })
    }
}

/// The pid of the process training `run` right now, if any — without touching the lock (taking
/// it, even shared and briefly, could make a trainer starting at that instant fail). On Linux,
/// /proc/locks lists who holds a lock on the file's inode; elsewhere, the pid the file records
/// is reported while that process exists (it may since have let go: only displays use this).
pub fn holder(run: &Path) -> Option<u32> {
    let path = run.join(".lock");
    if let Ok(locks) = std::fs::read_to_string("/proc/locks") {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&path).ok()?.ino();
        // "1: FLOCK  ADVISORY  WRITE 6168 08:01:123456 0 EOF": pid, then dev:inode.
        return locks
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (kind, pid, id) = (*f.get(1)?, f.get(4)?.parse::<u32>().ok()?, *f.get(5)?);
                (kind == "FLOCK" && id.rsplit(':').next()?.parse::<u64>().ok()? == ino).then_some(pid)
            })
            .next();
    }
    let pid: u32 = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    // Signal 0 only checks that the process exists (EPERM: it exists, owned by someone else).
    let alive = pid as i32 > 0
        && (unsafe { libc::kill(pid as i32, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
    alive.then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        // A second open file description conflicts like a second process would.
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    /// `holder` reports the lock while it is held and not after, though the pid stays in the file.
    #[test]
    fn holder_sees_the_lock_only_while_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None);
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Some(std::process::id()));
        drop(lock);
        assert_eq!(holder(dir.path()), None);
    }
}
