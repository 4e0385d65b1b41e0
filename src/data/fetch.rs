//! Download of the public datasets (MNIST, Fashion-MNIST) with SHA-256 verification and resume.
//!
//! Each file streams into `<name>.part` next to its final place. Only a body whose SHA-256 matches the
//! published one is renamed to the final name, so the loaders never see a truncated or tampered file.
//! An interrupted body keeps its `.part` and the next run resumes it with an HTTP range request.

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of a dataset: name on the server and local disk, and its published SHA-256 (hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: &'static str,
    pub sha256: &'static str,
}

/// The torchvision mirror: LeCun's own site is often down or rate-limited.
const MNIST_BASE: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
const MNIST_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

const FASHION_BASE: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
const FASHION_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
];

const DOWNLOADABLE: &str = "mnist, fashion-mnist";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Official download location (base URL ending with '/') and files of a known dataset name ("mnist" | "fashion-mnist").
pub fn remote(name: &str) -> Result<(&'static str, &'static [RemoteFile])> {
    match name {
        "mnist" => Ok((MNIST_BASE, MNIST_FILES)),
        "fashion-mnist" => Ok((FASHION_BASE, FASHION_FILES)),
        "digits" => {
            bail!("dataset 'digits' ships with latentlab and cannot be downloaded; downloadable: {DOWNLOADABLE}")
        }
        other => bail!(
            "unknown dataset '{other}': downloadable datasets are {DOWNLOADABLE} ('digits' ships with latentlab \
             and needs no download)"
        ),
    }
}

/// Download every file of dataset `name` into `data_dir/<name>/`, verifying SHA-256.
/// `base_url` overrides the official base (used by tests and mirrors). Returns the local paths.
/// Files already present with the right checksum are skipped. Shows an indicatif progress bar on stderr only if stderr is a terminal.
pub fn fetch(name: &str, data_dir: &Path, base_url: Option<&str>) -> Result<Vec<PathBuf>> {
    let (official, files) = remote(name)?;
    let base = base_url.unwrap_or(official);
    let dir = data_dir.join(name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let agent = ureq::AgentBuilder::new().timeout_connect(CONNECT_TIMEOUT).timeout_read(READ_TIMEOUT).build();
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        let dest = dir.join(file.name);
        if dest.exists() {
            if sha256_of(&dest)? == file.sha256 {
                paths.push(dest);
                continue;
            }
            // The final name must only ever hold verified data: drop a damaged or stale copy first, so a
            // failed download below cannot leave it looking valid.
            fs::remove_file(&dest)
                .with_context(|| format!("{} fails its checksum and cannot be removed", dest.display()))?;
        }
        download(&agent, &file_url(base, file.name), &dest, file)?;
        paths.push(dest);
    }
    Ok(paths)
}

/// Mirrors given by hand may lack the trailing '/'.
fn file_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Stream `url` into `<dest>.part` (resuming it if present), verify, then rename to `dest`.
fn download(agent: &ureq::Agent, url: &str, dest: &Path, file: &RemoteFile) -> Result<()> {
    let part = part_path(dest);
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let Some((resp, start)) = open(agent, url, have)? else {
        // 416 on a resume: the .part already holds the whole body (an earlier run stopped before the rename).
        return finish(&part, dest, file, url);
    };
    let body_len = resp.header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
    let mut out = if start > 0 { OpenOptions::new().append(true).open(&part) } else { File::create(&part) }
        .with_context(|| format!("cannot open {}", part.display()))?;

    let bar = progress_bar(file.name, body_len.map(|n| start + n), start);
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                // Keep what arrived (durably) so the next run resumes instead of starting over.
                let _ = out.sync_all();
                return Err(e).with_context(|| {
                    format!(
                        "download of {url} interrupted after {}; partial data kept in {}, run again to resume",
                        crate::util::human_bytes(got),
                        part.display()
                    )
                });
            }
        };
        out.write_all(&buf[..n]).with_context(|| format!("cannot write {}", part.display()))?;
        got += n as u64;
        bar.set_position(got);
    }
    bar.finish_and_clear();
    drop(out);
    finish(&part, dest, file, url)
}

/// Issue the GET, asking for the bytes after `offset` when resuming. Returns the response and the offset
/// its body starts at, or `None` when the server says the range is past the end (the .part is complete).
fn open(agent: &ureq::Agent, url: &str, offset: u64) -> Result<Option<(ureq::Response, u64)>> {
    let mut req = agent.get(url);
    if offset > 0 {
        req = req.set("Range", &format!("bytes={offset}-"));
    }
    match req.call() {
        Ok(resp) if offset > 0 && resp.status() == 206 => {
            if content_range_start(resp.header("Content-Range")) == Some(offset) {
                Ok(Some((resp, offset)))
            } else {
                // Some other slice than the one asked for: appending it would corrupt the file.
                open(agent, url, 0)
            }
        }
        // A 200 answer to a range request is the whole file: the server ignores ranges, so restart from zero.
        Ok(resp) => Ok(Some((resp, 0))),
        Err(ureq::Error::Status(416, _)) if offset > 0 => Ok(None),
        Err(ureq::Error::Status(code, resp)) => {
            Err(anyhow!("cannot download {url}: server answered HTTP {code} {}", resp.status_text()))
        }
        Err(ureq::Error::Transport(t)) => Err(anyhow!("cannot download {url}: {t}")),
    }
}

/// First byte of a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range_start(header: Option<&str>) -> Option<u64> {
    let spec = header?.trim().strip_prefix("bytes")?.trim_start();
    spec.split_once('-')?.0.trim().parse().ok()
}

/// Verify the complete `.part`; rename it to `dest` if it matches, delete it if not.
fn finish(part: &Path, dest: &Path, file: &RemoteFile, url: &str) -> Result<()> {
    let actual = sha256_of(part)?;
    if actual != file.sha256 {
        // A complete body with the wrong hash cannot be repaired by resuming: start from zero next time.
        let _ = fs::remove_file(part);
        bail!(
            "checksum mismatch for {} (from {url}): expected sha256 {}, got {actual}; the download was discarded",
            file.name,
            file.sha256
        );
    }
    let sync = |p: &Path| File::open(p).and_then(|f| f.sync_all());
    sync(part).with_context(|| format!("cannot sync {}", part.display()))?;
    fs::rename(part, dest).with_context(|| format!("cannot rename {} to {}", part.display(), dest.display()))?;
    // Make the rename itself durable; not every filesystem allows syncing a directory, hence best effort.
    if let Some(dir) = dest.parent() {
        let _ = sync(dir);
    }
    Ok(())
}

/// Lowercase hex SHA-256 of a file's content.
fn sha256_of(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A byte-progress bar on stderr, hidden when stderr is not a terminal (logs, pipes, tests).
fn progress_bar(name: &str, total: Option<u64>, pos: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.set_message(name.to_string());
    bar.set_position(pos);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_and_hashes_are_well_formed() {
        for name in ["mnist", "fashion-mnist"] {
            let (base, files) = remote(name).unwrap();
            assert!(base.starts_with("http") && base.ends_with('/'), "{base}");
            assert_eq!(files.len(), 4);
            for f in files {
                assert_eq!(f.sha256.len(), 64, "{}", f.name);
                assert!(f.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{}", f.name);
            }
        }
        let err = format!("{:#}", remote("digits").unwrap_err());
        assert!(err.contains("cannot be downloaded"), "{err}");
        let err = format!("{:#}", remote("cifar").unwrap_err());
        assert!(err.contains("mnist") && err.contains("fashion-mnist"), "{err}");
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(content_range_start(Some("bytes 100-199/200")), Some(100));
        assert_eq!(content_range_start(Some("bytes 0-0/1")), Some(0));
        assert_eq!(content_range_start(Some("bytes */200")), None);
        assert_eq!(content_range_start(None), None);
    }

    #[test]
    fn urls_and_part_names() {
        assert_eq!(file_url("http://h/x/", "a.gz"), "http://h/x/a.gz");
        assert_eq!(file_url("http://h/x", "a.gz"), "http://h/x/a.gz");
        assert_eq!(part_path(Path::new("/d/a.gz")), Path::new("/d/a.gz.part"));
    }

    #[test]
    fn sha256_matches_known_vector() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_of(&p).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
