//! `data::fetch` against a tiny local HTTP/1.1 server that serves the real MNIST files, supports
//! `Range: bytes=N-`, and can be told to misbehave per file (404, 500, cut body, corrupt bytes, ignore ranges).

use latentlab::data::fetch::{fetch, remote};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

const LABELS: &str = "train-labels-idx1-ubyte.gz"; // 28 881 bytes: small enough for the failure cases
const T10K_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

/// The real MNIST files shipped next to the repository (override with LATENTLAB_TEST_MNIST).
fn mnist_dir() -> PathBuf {
    let dir = std::env::var_os("LATENTLAB_TEST_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist")));
    assert!(
        dir.join(LABELS).is_file(),
        "real MNIST files not found in {} (set LATENTLAB_TEST_MNIST to their folder)",
        dir.display()
    );
    dir
}

fn original(name: &str) -> Vec<u8> {
    std::fs::read(mnist_dir().join(name)).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    NotFound,
    ServerError,
    /// Declare the full Content-Length, send only this many body bytes, close.
    CutAfter(usize),
    /// Serve the right length with one byte flipped.
    Corrupt,
    /// Answer 200 with the whole file even to a range request.
    IgnoreRange,
}

#[derive(Clone, Debug)]
struct Hit {
    file: String,
    range: Option<u64>,
}

#[derive(Default)]
struct State {
    faults: HashMap<String, Fault>,
    hits: Vec<Hit>,
}

struct Server {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (st, dir) = (state.clone(), mnist_dir());
        // Lives until the test process exits; each connection gets its own thread.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (st, dir) = (st.clone(), dir.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, &dir, &st);
                });
            }
        });
        Server { base, state }
    }

    fn set_fault(&self, file: &str, fault: Option<Fault>) {
        let faults = &mut self.state.lock().unwrap().faults;
        match fault {
            Some(f) => faults.insert(file.to_string(), f),
            None => faults.remove(file),
        };
    }

    fn hits(&self, file: &str) -> Vec<Hit> {
        self.state.lock().unwrap().hits.iter().filter(|h| h.file == file).cloned().collect()
    }

    fn total_hits(&self) -> usize {
        self.state.lock().unwrap().hits.len()
    }
}

fn handle(mut stream: TcpStream, dir: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let file = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.trim().eq_ignore_ascii_case("range")
        {
            range = v.trim().strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse().ok());
        }
    }
    let fault = {
        let mut st = state.lock().unwrap();
        st.hits.push(Hit { file: file.clone(), range });
        st.faults.get(&file).copied()
    };
    match fault {
        Some(Fault::NotFound) => return respond(&mut stream, "404 Not Found", "", b"no such file"),
        Some(Fault::ServerError) => return respond(&mut stream, "500 Internal Server Error", "", b"boom"),
        _ => {}
    }
    let data = if file.is_empty() || file.contains('/') { None } else { std::fs::read(dir.join(&file)).ok() };
    let Some(mut data) = data else {
        return respond(&mut stream, "404 Not Found", "", b"no such file");
    };
    if fault == Some(Fault::Corrupt) {
        let mid = data.len() / 2;
        data[mid] ^= 0xFF;
    }
    let len = data.len();
    let (status, extra, body) = match range {
        Some(off) if fault != Some(Fault::IgnoreRange) => {
            let off = off as usize;
            if off >= len {
                return respond(
                    &mut stream,
                    "416 Range Not Satisfiable",
                    &format!("Content-Range: bytes */{len}\r\n"),
                    b"",
                );
            }
            ("206 Partial Content", format!("Content-Range: bytes {off}-{}/{len}\r\n", len - 1), &data[off..])
        }
        _ => ("200 OK", String::new(), &data[..]),
    };
    if let Some(Fault::CutAfter(k)) = fault {
        write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len())?;
        stream.write_all(&body[..k.min(body.len())])?;
        stream.flush()?;
        return stream.shutdown(Shutdown::Write);
    }
    respond(&mut stream, status, &extra, body)
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> std::io::Result<()> {
    write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len())?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// A data dir whose `mnist/` already holds every verified file except `missing`, so a fetch only
/// downloads that one.
fn seeded(missing: &str) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for f in remote("mnist").unwrap().1.iter().filter(|f| f.name != missing) {
        std::fs::copy(mnist_dir().join(f.name), dir.join(f.name)).unwrap();
    }
    tmp
}

fn part_of(final_path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", final_path.display()))
}

#[test]
fn full_fetch_is_byte_identical_and_second_fetch_is_a_noop() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let paths = fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    let files = remote("mnist").unwrap().1;
    assert_eq!(paths.len(), 4);
    for (path, f) in paths.iter().zip(files) {
        assert_eq!(path, &tmp.path().join("mnist").join(f.name));
        assert!(std::fs::read(path).unwrap() == original(f.name), "{} differs from the original", f.name);
        let hits = server.hits(f.name);
        assert_eq!(hits.len(), 1, "{}", f.name);
        assert_eq!(hits[0].range, None, "a fresh download must not send Range");
    }
    // Only the four final files: no .part left behind.
    assert_eq!(std::fs::read_dir(tmp.path().join("mnist")).unwrap().count(), 4);

    let again = fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    assert_eq!(again, paths);
    assert_eq!(server.total_hits(), 4, "verified files must not be downloaded again");
}

#[test]
fn interrupted_body_keeps_part_and_retry_resumes_with_range() {
    let server = Server::start();
    let tmp = seeded(LABELS);
    let dest = tmp.path().join("mnist").join(LABELS);
    server.set_fault(LABELS, Some(Fault::CutAfter(10_000)));

    let err = format!("{:#}", fetch("mnist", tmp.path(), Some(&server.base)).unwrap_err());
    assert!(err.contains(LABELS) && err.contains("interrupted"), "{err}");
    assert!(!dest.exists(), "an unverified file must not appear under its final name");
    assert_eq!(std::fs::metadata(part_of(&dest)).unwrap().len(), 10_000, "the received prefix is kept");

    server.set_fault(LABELS, None);
    let paths = fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    assert_eq!(paths.len(), 4);
    let hits = server.hits(LABELS);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].range, Some(10_000), "the retry must resume at the end of the .part");
    assert!(std::fs::read(&dest).unwrap() == original(LABELS));
    assert!(!part_of(&dest).exists());
    // The seeded, already verified files were never requested.
    assert_eq!(server.total_hits(), 2);
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let server = Server::start();
    let tmp = seeded(LABELS);
    let dest = tmp.path().join("mnist").join(LABELS);
    // Junk in the .part: appending the full 200 body to it would fail the checksum.
    std::fs::write(part_of(&dest), vec![0xAB; 5_000]).unwrap();
    server.set_fault(LABELS, Some(Fault::IgnoreRange));

    fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    assert_eq!(server.hits(LABELS).iter().map(|h| h.range).collect::<Vec<_>>(), vec![Some(5_000)]);
    assert!(std::fs::read(&dest).unwrap() == original(LABELS));
    assert!(!part_of(&dest).exists());
}

#[test]
fn complete_part_is_verified_and_renamed_after_416() {
    let server = Server::start();
    let tmp = seeded(LABELS);
    let dest = tmp.path().join("mnist").join(LABELS);
    // As if an earlier run was killed between the last byte and the rename.
    std::fs::write(part_of(&dest), original(LABELS)).unwrap();

    fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    let len = original(LABELS).len() as u64;
    assert_eq!(server.hits(LABELS).iter().map(|h| h.range).collect::<Vec<_>>(), vec![Some(len)]);
    assert!(std::fs::read(&dest).unwrap() == original(LABELS));
    assert!(!part_of(&dest).exists());
}

#[test]
fn checksum_mismatch_leaves_nothing_behind() {
    let server = Server::start();
    let tmp = seeded(T10K_LABELS);
    let dest = tmp.path().join("mnist").join(T10K_LABELS);
    server.set_fault(T10K_LABELS, Some(Fault::Corrupt));

    let err = format!("{:#}", fetch("mnist", tmp.path(), Some(&server.base)).unwrap_err());
    let expected = remote("mnist").unwrap().1.iter().find(|f| f.name == T10K_LABELS).unwrap().sha256;
    assert!(err.contains("sha256") && err.contains("checksum"), "{err}");
    assert!(err.contains(T10K_LABELS) && err.contains(expected), "{err}");
    assert!(!dest.exists());
    assert!(!part_of(&dest).exists(), "a complete body with the wrong hash must be discarded");
}

#[test]
fn damaged_file_under_final_name_is_replaced() {
    let server = Server::start();
    let tmp = seeded(T10K_LABELS);
    let dest = tmp.path().join("mnist").join(T10K_LABELS);
    std::fs::write(&dest, b"not the labels").unwrap();

    fetch("mnist", tmp.path(), Some(&server.base)).unwrap();
    assert_eq!(server.hits(T10K_LABELS).len(), 1);
    assert!(std::fs::read(&dest).unwrap() == original(T10K_LABELS));
}

#[test]
fn http_errors_name_url_and_status() {
    let server = Server::start();
    for (fault, status) in [(Fault::NotFound, "404"), (Fault::ServerError, "500")] {
        let tmp = seeded(T10K_LABELS);
        let dest = tmp.path().join("mnist").join(T10K_LABELS);
        server.set_fault(T10K_LABELS, Some(fault));
        let err = format!("{:#}", fetch("mnist", tmp.path(), Some(&server.base)).unwrap_err());
        assert!(err.contains(status), "{err}");
        assert!(err.contains(&format!("{}{T10K_LABELS}", server.base)), "error should name the URL: {err}");
        assert!(!dest.exists());
        assert!(!part_of(&dest).exists());
    }

    // Connection refused: a port that was just free.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/");
    let tmp = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch("mnist", tmp.path(), Some(&base)).unwrap_err());
    assert!(err.contains(&base), "error should name the URL: {err}");
    for f in remote("mnist").unwrap().1 {
        assert!(!tmp.path().join("mnist").join(f.name).exists());
    }
}

#[test]
fn unknown_dataset_lists_known_names() {
    let tmp = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch("cifar10", tmp.path(), None).unwrap_err());
    assert!(err.contains("cifar10") && err.contains("mnist") && err.contains("fashion-mnist"), "{err}");
    let err = format!("{:#}", fetch("digits", tmp.path(), None).unwrap_err());
    assert!(err.contains("digits") && err.contains("cannot be downloaded"), "{err}");
    // Nothing was created for a name that is not downloadable.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
