//! `latentlab explore` end to end: the binary serves runs trained on the real digits data, and the
//! API is checked against independent computations (the CLI's own sample sheet, the test images on
//! disk, projections recomputed here), against every kind of bad request the issue names, under
//! many clients at once, and while a run is still training. The browser test drives the page in a
//! real headless Chromium and keeps screenshots under target/test-artifacts/.

mod common;
use common::*;
use latentlab::config::Options;
use latentlab::models::{ModelKind, Prior};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Four small runs on digits (seconds each), trained once for the whole file: an AE with a 2-d latent, a VAE
/// (20-d, so the map is a PCA plane), a cVAE and a DCGAN.
struct Runs {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let few = |o: Options| Options { epochs: Some(40), ..o };
        train_run(
            &root.join("ae"),
            &quick_config(ModelKind::Ae, "digits", few(Options { latent_dim: Some(2), ..Default::default() })),
        );
        train_run(&root.join("vae"), &quick_config(ModelKind::Vae, "digits", few(Options::default())));
        train_run(&root.join("cvae"), &quick_config(ModelKind::Cvae, "digits", few(Options::default())));
        train_run(
            &root.join("dcgan"),
            &quick_config(ModelKind::Dcgan, "digits", Options { max_steps: Some(60), ..Default::default() }),
        );
        Runs { _dir: dir, root }
    })
}

/// A GAN with the mixture prior: the plane is centred on the components' circle in z1, z2, wide
/// enough to cross all of them, and the note names that prior rather than N(0, I).
#[test]
fn space_of_a_mixture_prior_gan_crosses_every_component() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mix");
    let opts = Options { max_steps: Some(5), prior: Some(Prior::Mixture), ..Default::default() };
    train_run(&run, &quick_config(ModelKind::Gan, "digits", opts));
    let s = serve(&[&run], &[]);
    let sp = ok(get(&s, "/api/runs/mix/space"));
    assert_eq!(sp["basis"], "prior");
    assert_eq!((sp["center"][0].as_f64(), sp["center"][1].as_f64()), (Some(0.0), Some(0.0)), "{}", sp["center"]);
    assert_eq!(sp["extent"]["u"][1].as_f64(), Some(5.0));
    let note = sp["note"].as_str().unwrap();
    assert!(note.contains("mixture of 10 Gaussians") && !note.contains("N(0, I)"), "{note}");
}

/// A running `latentlab explore`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(paths: &[&Path], extra: &[&str]) -> Server {
    let mut child = Command::new(bin())
        .arg("explore")
        .args(paths)
        .args(["--port", "0"])
        .args(extra)
        .env("LATENTLAB_DATA", shared_data())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("explore did not start: {err}");
    }
    let url = line.trim().to_string();
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    Server { child, url, port }
}

/// One raw HTTP/1.1 exchange (so tests can send what a browser never would); returns the status,
/// the header block and the body.
fn raw(port: u16, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    // A server may answer (413) and close before a big body is all sent: read what it said.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String, Vec<u8>) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(port, req.as_bytes())
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    let (status, _, body) = request(s.port, "GET", path, "");
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("GET {path}: not JSON: {}", String::from_utf8_lossy(&body))),
    )
}

fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, out) = request(s.port, "POST", path, &body.to_string());
    (status, serde_json::from_slice(&out).unwrap())
}

fn ok(r: (u16, Value)) -> Value {
    assert_eq!(r.0, 200, "{}", r.1);
    r.1
}

/// A PNG data URL decoded to grey levels (row-major) and its size.
fn pixels(url: &Value) -> (u32, u32, Vec<u8>) {
    use base64::Engine;
    let b64 = url.as_str().unwrap().strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let img =
        image::load_from_memory(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap().to_luma8();
    (img.width(), img.height(), img.into_raw())
}

fn codes(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|c| c.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

#[test]
fn the_api_lists_maps_decodes_and_encodes_each_kind_of_model() {
    let r = runs();
    let paths: Vec<PathBuf> = ["ae", "vae", "cvae", "dcgan"].iter().map(|n| r.root.join(n)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let s = serve(&refs, &[]);

    let list = ok(get(&s, "/api/runs"));
    let runs = list["runs"].as_array().unwrap();
    let by_id = |id: &str| runs.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("no run {id} in {list}"));
    assert_eq!(by_id("ae")["latent_dim"], 2);
    assert_eq!(by_id("vae")["latent_dim"], 20);
    assert_eq!(by_id("cvae")["conditional"], true);
    assert_eq!(by_id("dcgan")["has_encoder"], false);
    assert_eq!(by_id("dcgan")["family"], "GAN");
    assert_eq!(by_id("vae")["shape"], json!([1, 8, 8]));
    assert_eq!(by_id("vae")["status"], "completed");

    // AE, 2-d: the map is the latent plane itself, and every point is the encoder's code.
    let ae = ok(get(&s, "/api/runs/ae/space?n=200"));
    assert_eq!(ae["basis"], "latent");
    assert_eq!(ae["points"]["u"].as_array().unwrap().len(), 200);
    let enc = ok(post(&s, "/api/runs/ae/encode", &json!({"indices": [0, 7, 199]})));
    for (k, &i) in [0usize, 7, 199].iter().enumerate() {
        let c = &codes(&enc["codes"])[k];
        assert!((c[0] - ae["points"]["u"][i].as_f64().unwrap()).abs() < 1e-4, "{c:?}");
        assert!((c[1] - ae["points"]["v"][i].as_f64().unwrap()).abs() < 1e-4);
    }

    // VAE, 20-d: a PCA plane; the directions are orthonormal and the points are the encoded test
    // images projected onto them (recomputed here from /encode).
    let vae = ok(get(&s, "/api/runs/vae/space?n=297"));
    assert_eq!(vae["basis"], "pca");
    assert!(vae["note"].as_str().unwrap().contains("principal"));
    let dirs = codes(&vae["directions"]);
    assert_eq!(dirs.len(), 8);
    for (a, da) in dirs.iter().enumerate() {
        for (b, db) in dirs.iter().enumerate() {
            let dot: f64 = da.iter().zip(db).map(|(x, y)| x * y).sum();
            assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-4, "directions {a}·{b} = {dot}");
        }
    }
    let spread = codes(&json!([vae["spread"]]))[0].clone();
    assert!(spread.windows(2).all(|w| w[0] >= w[1] - 1e-6), "principal spreads not decreasing: {spread:?}");
    let center = codes(&json!([vae["center"]]))[0].clone();
    let enc = ok(post(&s, "/api/runs/vae/encode", &json!({"indices": [3, 42]})));
    for (k, &i) in [3usize, 42].iter().enumerate() {
        let c = &codes(&enc["codes"])[k];
        let proj = |d: &Vec<f64>| c.iter().zip(&center).zip(d).map(|((x, m), e)| (x - m) * e).sum::<f64>();
        assert!((proj(&dirs[0]) - vae["points"]["u"][i].as_f64().unwrap()).abs() < 1e-3);
        assert!((proj(&dirs[1]) - vae["points"]["v"][i].as_f64().unwrap()).abs() < 1e-3);
    }
    // Each class mean is the mean of that class's codes: check class 0 from /encode.
    let labels = &vae["points"]["label"];
    let zeros: Vec<usize> = (0..297).filter(|&i| labels[i] == 0).collect();
    let enc0 = codes(&ok(post(&s, "/api/runs/vae/encode", &json!({ "indices": zeros })))["codes"]);
    let mean0 = &codes(&vae["class_means"])[0];
    for j in 0..20 {
        let m = enc0.iter().map(|c| c[j]).sum::<f64>() / enc0.len() as f64;
        assert!((m - mean0[j]).abs() < 1e-3, "class-0 mean, dimension {j}: {m} vs {}", mean0[j]);
    }
    // /encode shows the test image itself: the same pixels as /test/I.png.
    let (_, _, png) = request(s.port, "GET", "/api/runs/vae/test/42.png", "");
    let file = image::load_from_memory(&png).unwrap().to_luma8().into_raw();
    assert_eq!(pixels(&enc["images"][1]).2, file);

    // Samples are the sheet `latentlab sample --seed 3` draws, and decoding their codes gives the
    // same images: compare with the CLI's .npy (PNG holds 8-bit levels).
    let sheet = ok(get(&s, "/api/runs/vae/samples?n=6&seed=3"));
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("s.npy");
    let (okc, _, err) = cli(
        &["sample", paths[1].to_str().unwrap(), "--n", "6", "--seed", "3", "--out", npy.to_str().unwrap()],
        dir.path(),
    );
    assert!(okc, "{err}");
    let (_, cli_px) = latentlab::viz::grid::read_npy(&npy).unwrap();
    let decoded = ok(post(&s, "/api/runs/vae/decode", &json!({ "codes": sheet["codes"] })));
    for k in 0..6 {
        let (w, h, api_px) = pixels(&decoded["images"][k]);
        assert_eq!((w, h), (8, 8));
        assert_eq!(pixels(&sheet["images"][k]).2, api_px, "sample {k}: /samples and /decode differ");
        for (p, &a) in api_px.iter().enumerate() {
            let want = (cli_px[k * 64 + p].clamp(0.0, 1.0) * 255.0).round();
            assert!((a as f32 - want).abs() <= 1.0, "sample {k} pixel {p}: {a} vs the CLI's {want}");
        }
    }
    // `scale` enlarges each image; `png` answers one grid.
    let big = ok(post(&s, "/api/runs/vae/decode", &json!({ "codes": [center], "scale": 4 })));
    assert_eq!(pixels(&big["images"][0]).0, 32);
    let (status, head, grid) = request(
        s.port,
        "POST",
        "/api/runs/vae/decode",
        &json!({ "codes": sheet["codes"], "format": "png", "ncol": 3 }).to_string(),
    );
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: image/png"));
    let g = image::load_from_memory(&grid).unwrap();
    assert!(g.width() > g.height(), "3 columns × 2 rows: {}×{}", g.width(), g.height());

    // cVAE: the class changes the picture; a class it does not know is refused.
    let z = codes(&ok(get(&s, "/api/runs/cvae/samples?n=1&seed=0"))["codes"]);
    let three = ok(post(&s, "/api/runs/cvae/decode", &json!({ "codes": z, "labels": 3 })));
    let seven = ok(post(&s, "/api/runs/cvae/decode", &json!({ "codes": z, "labels": [7] })));
    assert_ne!(pixels(&three["images"][0]).2, pixels(&seven["images"][0]).2);
    let (status, e) = post(&s, "/api/runs/cvae/decode", &json!({ "codes": z, "labels": 10 }));
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("label 10 out of range"), "{e}");

    // DCGAN: no encoder, so no points; the plane is around a prior draw; /encode is refused.
    let gan = ok(get(&s, "/api/runs/dcgan/space"));
    assert_eq!(gan["basis"], "prior");
    assert!(gan["points"]["u"].as_array().unwrap().is_empty());
    assert_eq!(gan["center"], ok(get(&s, "/api/runs/dcgan/samples?n=1&seed=0"))["codes"][0]);
    let (status, e) = post(&s, "/api/runs/dcgan/encode", &json!({"indices": [0]}));
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("no encoder"), "{e}");

    // Training pictures and files: the newest sample grid, eval.json and the report when present.
    let (status, head, png) = request(s.port, "GET", "/api/runs/dcgan/latest-samples.png", "");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("x-epoch: 2\r\n"), "{head}");
    assert!(image::load_from_memory(&png).is_ok());
    assert_eq!(get(&s, "/api/runs/vae/eval.json").0, 404);
    assert!(by_id("vae")["eval"].is_null() && by_id("vae")["report"].is_null());
}

#[test]
fn links_to_eval_json_and_the_comparison_report_that_lists_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("vae");
    copy_dir(&runs().root.join("vae"), &run);
    std::fs::write(run.join("eval.json"), r#"{"fid": 12.5}"#).unwrap();
    // Another report beside it that does not list this run is not its report.
    std::fs::write(dir.path().join("report-other.json"), r#"{"runs": [{"path": "elsewhere/dcgan"}]}"#).unwrap();
    std::fs::write(dir.path().join("report-other.html"), "other").unwrap();
    std::fs::write(dir.path().join("report.json"), r#"{"runs": [{"path": "cmp/vae"}]}"#).unwrap();
    std::fs::write(dir.path().join("report.html"), "<html>the report</html>").unwrap();
    let s = serve(&[&run], &[]);
    let info = &ok(get(&s, "/api/runs"))["runs"][0];
    assert_eq!(info["eval"], "/api/runs/vae/eval.json");
    assert_eq!(info["report"], "/api/runs/vae/report.html");
    assert_eq!(ok(get(&s, "/api/runs/vae/eval.json"))["fid"], 12.5);
    let (status, _, body) = request(s.port, "GET", "/api/runs/vae/report.html", "");
    assert_eq!((status, body.as_slice()), (200, b"<html>the report</html>".as_slice()));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_name() == ".lock" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn bad_requests_get_a_4xx_and_a_message_and_the_server_keeps_serving() {
    let r = runs();
    let s = serve(&[&r.root.join("vae"), &r.root.join("dcgan")], &[]);
    let expect = |(status, v): (u16, Value), want: u16, words: &str| {
        assert_eq!(status, want, "{v}");
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("no error message: {v}"));
        assert!(msg.contains(words), "'{msg}' does not say '{words}'");
    };
    let z = |n: usize, l: usize| json!(vec![vec![0.1; l]; n]);
    // Wrong code length, NaN/Inf and absurd numbers, too many codes.
    expect(
        post(&s, "/api/runs/vae/decode", &json!({"codes": [[1, 2, 3]]})),
        400,
        "has 3 numbers; this model's latent has 20",
    );
    for bad in [r#"{"codes": [[NaN]]}"#, r#"{"codes": [[Infinity]]}"#, r#"{"codes": [[1e999]]}"#] {
        let (status, _, body) = request(s.port, "POST", "/api/runs/vae/decode", bad);
        expect((status, serde_json::from_slice(&body).unwrap()), 400, "finite");
    }
    let mut far = vec![0.0; 20];
    far[5] = 1e6;
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": [far]})), 400, "codes[0][5]");
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": z(1025, 20)})), 400, "1 to 1024");
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": []})), 400, "1 to 1024");
    expect(get(&s, "/api/runs/vae/samples?n=100000"), 400, "1 to 1024");
    expect(
        post(&s, "/api/runs/vae/encode", &json!({"indices": [297]})),
        400,
        "test index 297 out of range: the test set has 297 images",
    );
    expect(post(&s, "/api/runs/vae/encode", &json!({"indices": [-1]})), 400, "test index -1 out of range");
    // Malformed bodies, unknown fields, options the model does not use, nonsense parameters.
    expect(post(&s, "/api/runs/vae/decode", &json!({"codez": z(1, 20)})), 400, "unknown field `codez`");
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": z(1, 20), "labels": 2})), 400, "not conditional");
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": z(1, 20), "format": "gif"})), 400, "format 'gif'");
    expect(post(&s, "/api/runs/vae/decode", &json!({"codes": z(1, 20), "scale": 100})), 400, "scale 100");
    let (status, _, body) = request(s.port, "POST", "/api/runs/vae/decode", "{\"codes\": [[0.1,");
    expect((status, serde_json::from_slice(&body).unwrap()), 400, "request body");
    expect(get(&s, "/api/runs/vae/space?n=0"), 400, "1 to 10000");
    expect(get(&s, "/api/runs/vae/space?n=lots"), 400, "n=lots");
    expect(get(&s, "/api/runs/vae/space?colour=red"), 400, "unknown query parameter 'colour'");
    // Unknown runs, endpoints and methods.
    expect(get(&s, "/api/runs/nope/space"), 404, "unknown run 'nope'");
    expect(get(&s, "/api/runs/vae/weights"), 404, "no such endpoint");
    expect(get(&s, "/api/runs/vae/decode"), 405, "GET is not allowed");
    // Path traversal in every name: nothing outside the served table is ever read.
    for path in [
        "/../../../../etc/passwd",
        "/api/runs/../../../../etc/passwd",
        "/api/runs/%2e%2e/eval.json",
        "/api/runs/vae/test/..%2F..%2Fconfig.toml",
        "/api/runs/vae/test/../../config.toml",
        "/api/runs/vae%2F..%2Fdcgan/space",
        "/api/runs/vae/..%2fconfig.toml",
    ] {
        let (status, _, body) = request(s.port, "GET", path, "");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{path}: {text}");
        assert!(!text.contains("root:") && !text.contains("model ="), "{path} leaked a file: {text}");
    }
    // A body over the limit, announced or not.
    let big = format!("{{\"codes\": [[{}0]]}}", "0,".repeat(2_200_000));
    let (status, _, body) = request(s.port, "POST", "/api/runs/vae/decode", &big);
    expect((status, serde_json::from_slice(&body).unwrap()), 413, "over the 4 MiB limit");
    // A Content-Length no one will send (a server that allocates what it announces dies here).
    for announced in ["999999999", "99999999999999"] {
        let lie = format!(
            "POST /api/runs/vae/decode HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {announced}\r\n\r\n{{",
            s.port
        );
        let (status, _, body) = raw(s.port, lie.as_bytes());
        expect((status, serde_json::from_slice(&body).unwrap()), 413, "limit");
    }
    // DNS rebinding: a Host (or Origin) naming another site is refused, even on the right port.
    for host in [format!("evil.example:{}", s.port), "127.0.0.1:1".to_string(), "localhost".to_string()] {
        let req = format!("GET /api/runs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (status, _, body) = raw(s.port, req.as_bytes());
        expect((status, serde_json::from_slice(&body).unwrap()), 403, "DNS rebinding");
    }
    let (status, _, body) = raw(s.port, b"GET /api/runs HTTP/1.1\r\nConnection: close\r\n\r\n");
    expect((status, serde_json::from_slice(&body).unwrap()), 400, "no Host header");
    let req = format!(
        "POST /api/runs/vae/decode HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\nOrigin: http://evil.example:{0}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        s.port
    );
    let (status, _, body) = raw(s.port, req.as_bytes());
    expect((status, serde_json::from_slice(&body).unwrap()), 403, "cross-site request");
    // localhost by name is this server.
    let req = format!("GET /api/runs HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", s.port);
    assert_eq!(raw(s.port, req.as_bytes()).0, 200);
    // Garbage on the wire, then a half-sent request and a hang-up: still serving.
    let _ = raw_no_reply(s.port, b"\x00\x01\x02 NOT HTTP\r\n\r\n");
    let _ = raw_no_reply(s.port, b"POST /api/runs/vae/decode HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"co");
    assert_eq!(ok(get(&s, "/api/runs"))["runs"].as_array().unwrap().len(), 2);
}

/// Send bytes and hang up without waiting for a whole answer.
fn raw_no_reply(port: u16, bytes: &[u8]) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(bytes)?;
    s.shutdown(std::net::Shutdown::Both)
}

#[test]
fn many_clients_share_one_loaded_model_and_a_run_in_progress_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("ae");
    let cfg = quick_config(
        ModelKind::Ae,
        "digits",
        Options { max_steps: Some(30), log_every: Some(10), ..Default::default() },
    );
    train_run(&run, &cfg);
    let s = serve(&[&run], &[]);
    let port = s.port;

    // 16 clients × 4 requests at once: every answer is right, and the model was loaded once.
    let code = json!({ "codes": [vec![0.5; 20]] });
    let want = ok(post(&s, "/api/runs/ae/decode", &code));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let code = code.to_string();
            std::thread::spawn(move || {
                (0..4).map(|_| request(port, "POST", "/api/runs/ae/decode", &code)).collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (status, _, body) in t.join().unwrap() {
            assert_eq!(status, 200);
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), want);
        }
    }
    assert_eq!(ok(get(&s, "/api/runs"))["runs"][0]["loads"], 1);

    // The metrics stream: whole lines only, from an offset, and nothing new after `next`.
    let first = ok(get(&s, "/api/runs/ae/metrics?from=0"));
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(first["records"].as_array().unwrap().len(), lines.lines().count());
    assert_eq!(first["next"], lines.len());
    let next = first["next"].as_u64().unwrap();
    assert!(ok(get(&s, &format!("/api/runs/ae/metrics?from={next}")))["records"].as_array().unwrap().is_empty());

    // Training goes on (a resume to step 60): new records stream in after `next`, and the next
    // request loads the newer checkpoint.
    let (okr, _, err) = cli(&["resume", run.to_str().unwrap(), "--max-steps", "60"], dir.path());
    assert!(okr, "{err}");
    let more = ok(get(&s, &format!("/api/runs/ae/metrics?from={next}")));
    let steps: Vec<u64> = more["records"].as_array().unwrap().iter().filter_map(|r| r["step"].as_u64()).collect();
    assert!(steps.contains(&40) && steps.contains(&60), "{more}");
    let info = &ok(get(&s, "/api/runs"))["runs"][0];
    assert_eq!((info["step"].as_u64(), info["loads"].as_u64()), (Some(60), Some(2)), "{info}");
    let after = ok(post(&s, "/api/runs/ae/decode", &code));
    assert_ne!(after, want, "the decoder did not change after 30 more steps");

    // A torn last line (a writer mid-line) is held back; a rewritten, shorter log restarts.
    let len = std::fs::metadata(run.join("metrics.jsonl")).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))
        .unwrap()
        .write_all(b"{\"kind\":\"st")
        .unwrap();
    let torn = ok(get(&s, &format!("/api/runs/ae/metrics?from={len}")));
    assert_eq!((torn["records"].as_array().unwrap().len() as u64, torn["next"].as_u64()), (0, Some(len)));
    std::fs::write(run.join("metrics.jsonl"), "{\"kind\":\"step\",\"step\":1}\n").unwrap();
    let reset = ok(get(&s, &format!("/api/runs/ae/metrics?from={len}")));
    assert_eq!(reset["reset"], true);
    assert_eq!(reset["records"][0]["step"], 1);
}

#[test]
fn a_run_without_a_checkpoint_yet_is_listed_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("young");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(runs().root.join("vae/config.toml"), run.join("config.toml")).unwrap();
    let s = serve(&[&run], &[]);
    let info = &ok(get(&s, "/api/runs"))["runs"][0];
    assert!(info["error"].as_str().unwrap().contains("no checkpoint yet"), "{info}");
    let (status, e) = get(&s, "/api/runs/young/space");
    assert_eq!(status, 409);
    assert!(e["error"].as_str().unwrap().contains("no checkpoint yet"));
    // The CLI refuses what is not a run folder, and a nonsense --host.
    let (okc, _, err) = cli(&["explore", dir.path().join("nothing").to_str().unwrap(), "--port", "0"], dir.path());
    assert!(!okc && err.contains("nothing"), "{err}");
    let (okc, _, err) = cli(&["explore", run.to_str().unwrap(), "--host", "my laptop", "--port", "0"], dir.path());
    assert!(!okc && err.contains("--host my laptop"), "{err}");
}

/// A JS expression: #decoded shows a kept code (not a hover preview) newer than `version`.
fn decoded_after(version: i64) -> String {
    format!(
        "(() => {{ const d = document.getElementById('decoded'); return Number(d.dataset.version) > {version} && d.dataset.kind === 'current'; }})()"
    )
}

#[test]
fn chromium_drives_the_page_map_sliders_walk_arithmetic_and_the_run_picker() {
    use common::cdp::Browser;
    use std::time::Duration;
    let r = runs();
    let s = serve(&[&r.root.join("vae"), &r.root.join("dcgan"), &r.root.join("cvae"), &r.root.join("ae")], &[]);
    let Some(mut b) = Browser::launch_sized(1280, 1500) else { return };
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let long = Duration::from_secs(60);
    let version =
        |b: &mut Browser| b.eval("Number(document.getElementById('decoded').dataset.version)").as_i64().unwrap();
    let src = |b: &mut Browser, id: &str| {
        b.eval(&format!("document.getElementById('{id}').src")).as_str().unwrap().to_string()
    };

    // The VAE: the map has a dot per test code and a legend; the first decode is on screen.
    b.navigate(&format!("{}#run=vae", s.url));
    b.wait_for("document.body.dataset.ready === '1'", long);
    assert!(b.eval("document.getElementById('map-note').textContent").as_str().unwrap().contains("principal"));
    assert_eq!(b.eval("document.querySelectorAll('#legend li').length"), 10);
    assert_eq!(b.eval("document.querySelectorAll('#picks .pick').length"), 16);

    // Clicking two places on the map decodes two different pictures.
    let mut seen = vec![src(&mut b, "decoded")];
    for (fx, fy) in [(0.2, 0.25), (0.8, 0.7)] {
        let v = version(&mut b);
        b.click_in("#map", fx, fy);
        b.wait_for(&decoded_after(v), long);
        let now = src(&mut b, "decoded");
        assert!(!seen.contains(&now), "the click at ({fx}, {fy}) did not change the decoded image");
        seen.push(now);
    }
    // Hovering previews without keeping.
    let v = version(&mut b);
    let (x, y, w, h) = b.rect("#map");
    b.hover(x + 0.5 * w, y + 0.1 * h);
    b.wait_for(&format!("Number(document.getElementById('decoded').dataset.version) > {v}"), long);
    // A slider moves the code along PC1: a new picture.
    let v = version(&mut b);
    let before = src(&mut b, "decoded");
    let max = b.eval("Number(document.getElementById('slider-0').max)").as_f64().unwrap();
    b.set_range("#slider-0", max);
    b.wait_for(&decoded_after(v), long);
    assert_ne!(src(&mut b, "decoded"), before, "moving the PC1 slider changed nothing");

    // The walk: two test images as ends, then play: the frame advances by itself.
    b.click_in("#picks .pick:nth-child(1)", 0.5, 0.5);
    b.click_in("#picks .pick:nth-child(4)", 0.5, 0.5);
    b.wait_for(
        "document.getElementById('walk-frame').hasAttribute('src') && !document.getElementById('walk-t').disabled",
        long,
    );
    let frame =
        |b: &mut Browser| b.eval("Number(document.getElementById('walk-frame').dataset.frame)").as_i64().unwrap();
    b.set_range("#walk-t", 0.0);
    let first = src(&mut b, "walk-frame");
    b.click_in("#walk-play", 0.5, 0.5);
    let f0 = frame(&mut b);
    b.wait_for(&format!("Number(document.getElementById('walk-frame').dataset.frame) !== {f0}"), long);
    let f1 = frame(&mut b);
    b.wait_for(&format!("Number(document.getElementById('walk-frame').dataset.frame) !== {f1}"), long);
    b.screenshot(&artifacts.join("explore-vae-walk.png"));
    b.click_in("#walk-play", 0.5, 0.5);
    assert_ne!(src(&mut b, "walk-frame"), first, "the walk's frames are all the same picture");

    // Arithmetic on class means: four pictures.
    b.click_in("#arith-go", 0.5, 0.5);
    b.wait_for("document.getElementById('arith-result').dataset.done === '1'", long);
    assert_eq!(b.eval("document.querySelectorAll('#arith-result img').length"), 4);
    // The training curves were drawn from the metrics stream.
    b.wait_for("document.getElementById('latest-samples').naturalWidth > 0", long);
    b.screenshot(&artifacts.join("explore-vae.png"));

    // The run picker: the DCGAN has no encoder, so the map is the decoded plane around a prior draw.
    b.eval("(() => { const r = document.getElementById('run'); r.value = 'dcgan'; r.dispatchEvent(new Event('change')); })()");
    b.wait_for(
        "document.body.dataset.ready === '1' && document.getElementById('map-note').textContent.includes('no encoder')",
        long,
    );
    assert_eq!(b.eval("document.getElementById('show-grid').checked"), true);
    let v = version(&mut b);
    b.click_in("#map", 0.3, 0.6);
    b.wait_for(&decoded_after(v), long);
    b.screenshot(&artifacts.join("explore-dcgan.png"));

    // The cVAE: changing the class re-decodes the same code as another class.
    b.eval("(() => { const r = document.getElementById('run'); r.value = 'cvae'; r.dispatchEvent(new Event('change')); })()");
    b.wait_for("document.body.dataset.ready === '1' && !document.getElementById('class-picker').hidden", long);
    let v = version(&mut b);
    let before = src(&mut b, "decoded");
    // It starts on test image 0 reconstructed with that image's own class.
    let cur = b.eval("Number(document.getElementById('class').value)").as_i64().unwrap();
    let first_label = ok(post(&s, "/api/runs/cvae/encode", &json!({"indices": [0]})))["labels"][0].as_i64();
    assert_eq!(Some(cur), first_label, "the class selector does not follow the test image's label");
    let next = (cur + 1) % 10;
    b.eval(&format!("(() => {{ const c = document.getElementById('class'); c.value = '{next}'; c.dispatchEvent(new Event('change')); }})()"));
    // A decode queued before the change may land first: wait (up to `long`) for the picture to change.
    b.wait_for(
        &format!(
            "Number(document.getElementById('decoded').dataset.version) > {v} && document.getElementById('decoded').src !== {}",
            serde_json::to_string(&before).unwrap()
        ),
        long,
    );
    assert_ne!(src(&mut b, "decoded"), before, "class {next} decodes like class {cur}");
    b.wait_for("document.getElementById('decoded-caption').textContent.includes('drawn as class')", long);

    // The AE's 2-d plane.
    b.eval(
        "(() => { const r = document.getElementById('run'); r.value = 'ae'; r.dispatchEvent(new Event('change')); })()",
    );
    b.wait_for(
        "document.body.dataset.ready === '1' && document.getElementById('map-note').textContent.includes('2-d')",
        long,
    );
    b.eval("(() => { const g = document.getElementById('show-grid'); g.checked = true; g.dispatchEvent(new Event('change')); })()");
    b.screenshot(&artifacts.join("explore-ae.png"));
    b.eval("0");
    assert!(b.js_errors().is_empty(), "the page logged errors: {:?}", b.js_errors());
    let shot = image::open(artifacts.join("explore-vae.png")).unwrap().to_rgb8();
    assert_eq!(shot.width(), 1280);
    let distinct: std::collections::HashSet<[u8; 3]> = shot.pixels().step_by(53).map(|p| p.0).collect();
    assert!(distinct.len() > 30, "screenshot looks blank ({} colours)", distinct.len());
}

#[test]
fn bench_reports_the_decode_latency_of_a_grid_of_64() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let (okc, out, err) = cli(
        &[
            "bench",
            "--explore",
            r.root.join("vae").to_str().unwrap(),
            r.root.join("dcgan").to_str().unwrap(),
            "--steps",
            "3",
            "--warmup",
            "1",
            "--json",
        ],
        dir.path(),
    );
    assert!(okc, "{err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["model"].as_str(), rows[1]["model"].as_str()), (Some("vae"), Some("dcgan")));
    for row in &rows {
        assert_eq!(row["images"], 64);
        let (m, p) = (row["median_ms"].as_f64().unwrap(), row["p90_ms"].as_f64().unwrap());
        assert!(m > 0.0 && p >= m, "{row}");
    }
}

/// A face GAN conditioned on attributes: the API decodes and samples with `attrs`, refuses names
/// the model does not know, and the page's attribute picker re-decodes the same code when a chip
/// is toggled (Chromium).
#[test]
fn the_attribute_picker_draws_the_same_code_with_other_attributes() {
    use common::cdp::Browser;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_celeba(dir.path(), 120);
    let run = dir.path().join("faces");
    let cache = dir.path().join("cache");
    let (ok_train, _, err) = common::cli_env(
        &[
            "train",
            "dcgan",
            "--dataset",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--condition",
            "attributes:Male,Smiling,Eyeglasses",
            "--image-size",
            "16",
            "--width",
            "4",
            "--max-steps",
            "10",
        ],
        dir.path(),
        &[("LATENTLAB_CACHE", cache.as_path())],
    );
    assert!(ok_train, "{err}");
    let s = serve(&[&run], &[]);
    let list = ok(get(&s, "/api/runs"));
    let info = list["runs"].as_array().unwrap().iter().find(|r| r["id"] == "faces").unwrap().clone();
    assert_eq!(info["attributes"], json!(["Male", "Smiling", "Eyeglasses"]));
    assert_eq!(info["conditional"], json!(false), "no class selector for an attribute model");
    let code = vec![vec![0.3; 100]];
    let a = ok(post(&s, "/api/runs/faces/decode", &json!({"codes": code, "attrs": "Male,-Smiling"})));
    let b = ok(post(&s, "/api/runs/faces/decode", &json!({"codes": code, "attrs": "-Male,Smiling"})));
    assert_ne!(a["images"][0], b["images"][0], "the attributes changed nothing");
    let (status, e) = post(&s, "/api/runs/faces/decode", &json!({"codes": code, "attrs": "Bald"}));
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("'Bald'"), "{e}");
    let (status, e) = post(&s, "/api/runs/faces/decode", &json!({"codes": code, "labels": 1}));
    assert!(status == 400 && e["error"].as_str().unwrap().contains("not conditioned on a class"), "{e}");
    let r = ok(get(&s, "/api/runs/faces/samples?n=2&attrs=Eyeglasses"));
    assert_eq!(r["images"].as_array().unwrap().len(), 2);

    let Some(mut b) = Browser::launch_sized(1280, 1200) else { return };
    let long = Duration::from_secs(60);
    b.navigate(&format!("{}#run=faces", s.url));
    b.wait_for("document.body.dataset.ready === '1' && !document.getElementById('attr-picker').hidden", long);
    assert_eq!(b.eval("document.querySelectorAll('#attr-chips button').length"), 3);
    assert_eq!(b.eval("document.getElementById('class-picker').hidden"), true);
    let version =
        |b: &mut Browser| b.eval("Number(document.getElementById('decoded').dataset.version)").as_i64().unwrap();
    let src = |b: &mut Browser| b.eval("document.getElementById('decoded').src").as_str().unwrap().to_string();
    b.wait_for("document.getElementById('decoded').hasAttribute('src')", long);
    let before = src(&mut b);
    let v = version(&mut b);
    b.eval("(() => { document.getElementById('attr-list').open = true; })()");
    // Male, then Male again (now absent): the input follows the chips.
    b.eval("document.querySelector('#attr-chips button[data-name=Male]').click()");
    b.eval("document.querySelector('#attr-chips button[data-name=Male]').click()");
    assert_eq!(b.eval("document.getElementById('attrs').value"), "-Male");
    b.wait_for(&decoded_after(v), long);
    assert_ne!(src(&mut b), before, "toggling an attribute did not change the picture");
    assert!(
        b.eval("document.getElementById('decoded-caption').textContent").as_str().unwrap().contains("drawn with -Male")
    );
    // A typed name the model does not know shows the server's message.
    b.eval("(() => { const a = document.getElementById('attrs'); a.value = 'Bald'; a.dispatchEvent(new Event('input')); })()");
    b.wait_for("!document.getElementById('error').hidden", long);
    assert!(b.eval("document.getElementById('error-text').textContent").as_str().unwrap().contains("Bald"));
}

/// A StackGAN on faces: the run list offers the caption box (with a sentence the run knows), typed
/// sentences draw the same code differently, and an unknown word is named by the server and shown.
#[test]
fn the_caption_box_draws_faces_from_typed_sentences() {
    use common::cdp::Browser;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_celeba(dir.path(), 120);
    let run = dir.path().join("text");
    let cache = dir.path().join("cache");
    let args = ["train", "stackgan", "--dataset", data.to_str().unwrap(), "--out", run.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend(["--image-size", "32", "--width", "4", "--max-steps", "10"]);
    let (ok_train, _, err) = common::cli_env(&args, dir.path(), &[("LATENTLAB_CACHE", cache.as_path())]);
    assert!(ok_train, "{err}");
    let s = serve(&[&run], &[]);
    let list = ok(get(&s, "/api/runs"));
    let info = list["runs"].as_array().unwrap().iter().find(|r| r["id"] == "text").unwrap().clone();
    assert_eq!(info["text"], json!(true));
    assert_eq!(info["conditional"], json!(false), "no class selector for captions without classes");
    let example = info["caption_example"].as_str().unwrap().to_string();
    assert!(example.contains("woman") || example.contains("man"), "{example}");
    let code = vec![vec![0.3; 100]];
    let a = ok(post(&s, "/api/runs/text/decode", &json!({"codes": code, "caption": "a smiling young woman"})));
    let b = ok(post(&s, "/api/runs/text/decode", &json!({"codes": code, "caption": "an older man, not smiling"})));
    assert_ne!(a["images"][0], b["images"][0], "the caption changed nothing");
    // Without a caption every code of a request (a map's tiles) is drawn with the same one.
    let same = ok(post(&s, "/api/runs/text/decode", &json!({"codes": [code[0].clone(), code[0].clone()]})));
    assert_eq!(same["images"][0], same["images"][1], "one code, two pictures: the default caption differs by tile");
    let (status, e) = post(&s, "/api/runs/text/decode", &json!({"codes": code, "caption": "a woman with purple hair"}));
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("'purple'"), "{e}");

    let Some(mut b) = Browser::launch_sized(1280, 1200) else { return };
    let long = Duration::from_secs(60);
    b.navigate(&format!("{}#run=text", s.url));
    b.wait_for("document.body.dataset.ready === '1' && !document.getElementById('caption-picker').hidden", long);
    assert_eq!(b.eval("document.getElementById('class-picker').hidden"), true);
    assert_eq!(b.eval("document.getElementById('caption').placeholder"), example.as_str());
    let version =
        |b: &mut Browser| b.eval("Number(document.getElementById('decoded').dataset.version)").as_i64().unwrap();
    let src = |b: &mut Browser| b.eval("document.getElementById('decoded').src").as_str().unwrap().to_string();
    b.wait_for("document.getElementById('decoded').hasAttribute('src')", long);
    let type_caption = |b: &mut Browser, text: &str| {
        b.eval(&format!(
            "(() => {{ const c = document.getElementById('caption'); c.value = {text:?}; c.dispatchEvent(new Event('input')); }})()"
        ));
    };
    let v = version(&mut b);
    type_caption(&mut b, "a smiling young woman");
    b.wait_for(&decoded_after(v), long);
    b.wait_for("document.getElementById('decoded-caption').textContent.includes('a smiling young woman')", long);
    let woman = src(&mut b);
    type_caption(&mut b, "an older man, not smiling");
    b.wait_for(&format!("document.getElementById('decoded').src !== {woman:?} && document.getElementById('decoded').dataset.kind === 'current'"), long);
    assert!(
        b.eval("document.getElementById('decoded-caption').textContent").as_str().unwrap().contains("an older man")
    );
    type_caption(&mut b, "a woman with purple hair");
    b.wait_for("!document.getElementById('error').hidden", long);
    assert!(b.eval("document.getElementById('error-text').textContent").as_str().unwrap().contains("purple"));
}
