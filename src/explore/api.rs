//! The endpoints (docs/explore-api.md). Every check names the input it refuses.

use super::http::{ApiError, ApiResult, Call, Reply, State};
use super::runs::{ExploredRun, Loaded};
use super::space;
use crate::artifacts::Summary;
use crate::data::ImageShape;
use crate::eval::features::unit;
use crate::models::condition::Request;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most codes, indices or samples in one request.
pub const MAX_BATCH: usize = 1024;
/// Largest magnitude of a code component: far past any prior's support, small enough that no
/// layer overflows.
const MAX_ABS: f64 = 1e4;

pub fn list(s: &State, c: &Call) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let runs: Vec<Value> = s.runs.iter().map(run_info).collect();
    Ok(Reply::Json(json!({ "runs": runs })))
}

fn run_info(r: &ExploredRun) -> Value {
    let dir = r.dir();
    let status = run_status(r);
    let base = format!("/api/runs/{}", r.id);
    let mut info = json!({
        "id": r.id,
        "path": r.path.display().to_string(),
        "status": status,
        "eval": dir.eval().exists().then(|| format!("{base}/eval.json")),
        "report": find_report(&r.path).map(|_| format!("{base}/report.html")),
    });
    let m = info.as_object_mut().expect("an object");
    match r.get() {
        Ok(l) => {
            let spec = &l.run.model.spec;
            let decl = spec.kind.decl();
            for (k, v) in [
                ("model", json!(spec.kind.name())),
                ("family", json!(decl.family)),
                ("conditional", json!(spec.by_class())),
                ("attributes", json!(spec.cond_attributes())),
                ("text", json!(decl.text)),
                ("vocabulary", json!(spec.text.as_ref().map(|t| &t.vocab))),
                // A sentence the run knows, for the caption box's placeholder.
                ("caption_example", json!(spec.text.as_ref().and_then(|t| t.showcase().into_iter().last()))),
                ("has_encoder", json!(spec.kind.has_encoder())),
                ("latent_dim", json!(spec.latent_dim)),
                ("shape", json!([spec.shape.channels, spec.shape.height, spec.shape.width])),
                ("classes", json!(l.run.class_names)),
                ("dataset", json!(l.run.cfg.dataset)),
                ("step", json!(l.run.state.step)),
                ("epoch", json!(l.run.state.epoch)),
                ("loads", json!(r.loads.load(std::sync::atomic::Ordering::Relaxed))),
            ] {
                m.insert(k.into(), v);
            }
        }
        Err(e) => {
            m.insert("error".into(), json!(e.message));
        }
    }
    info
}

pub fn space(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&["n"])?;
    let n: usize = c.param("n", 2000)?;
    if !(1..=10_000).contains(&n) {
        return Err(ApiError::bad(format!("n={n}: the map takes 1 to 10000 test codes")));
    }
    let l = r.get()?;
    if let Some(v) = l.spaces.lock().unwrap_or_else(|p| p.into_inner()).get(&n) {
        return Ok(Reply::Json((**v).clone()));
    }
    let v = std::sync::Arc::new(space::compute(&l, n)?);
    l.spaces.lock().unwrap_or_else(|p| p.into_inner()).insert(n, v.clone());
    Ok(Reply::Json((*v).clone()))
}

/// One class for all codes, or one per code.
#[derive(Deserialize)]
#[serde(untagged)]
enum Labels {
    One(i64),
    Each(Vec<i64>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeBody {
    codes: Vec<Vec<f64>>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    ncol: Option<usize>,
    #[serde(default)]
    scale: Option<u32>,
    /// Text models: decode every code with this caption (instead of a class).
    #[serde(default)]
    caption: Option<String>,
    /// Attribute models: decode every code with these attributes, e.g. "Smiling,-Male".
    #[serde(default)]
    attrs: Option<String>,
}

pub fn decode(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let body: DecodeBody = c.json()?;
    let l = r.get()?;
    let spec = &l.run.model.spec;
    let n = body.codes.len();
    batch_size("codes", n)?;
    let mut z = Vec::with_capacity(n * spec.latent_dim);
    for (i, code) in body.codes.iter().enumerate() {
        if code.len() != spec.latent_dim {
            return Err(ApiError::bad(format!(
                "codes[{i}] has {} numbers; this model's latent has {}",
                code.len(),
                spec.latent_dim
            )));
        }
        if let Some((j, v)) = code.iter().enumerate().find(|(_, v)| !v.is_finite() || v.abs() > MAX_ABS) {
            return Err(ApiError::bad(format!("codes[{i}][{j}] = {v}: components must be finite, |x| ≤ {MAX_ABS}")));
        }
        z.extend(code.iter().map(|&v| v as f32));
    }
    let labels = conds(&l, body.labels, body.attrs.as_deref(), n)?;
    let scale = body.scale.unwrap_or(1);
    if !(1..=8).contains(&scale) {
        return Err(ApiError::bad(format!("scale {scale}: use 1 to 8")));
    }
    let imgs = match &body.caption {
        None => l.run.model.decode_host(&z, &labels),
        Some(c) if c.len() > 1000 => return Err(ApiError::bad("caption: at most 1000 characters".to_string())),
        Some(c) => l
            .run
            .model
            .decode_text_host(&z, std::slice::from_ref(c), crate::models::stackgan::Stage::Two)
            .map_err(|e| ApiError::bad(format!("caption: {e:#}")))?,
    };
    match body.format.as_deref().unwrap_or("json") {
        "json" => Ok(Reply::Json(json!({
            "shape": [spec.shape.channels, spec.shape.height, spec.shape.width],
            "images": data_urls(&imgs, spec.shape, scale)?,
        }))),
        "png" => {
            let ncol = body.ncol.unwrap_or_else(|| (n as f64).sqrt().ceil() as usize);
            if ncol == 0 || ncol > MAX_BATCH {
                return Err(ApiError::bad(format!("ncol {ncol}: use 1 to {MAX_BATCH}")));
            }
            Ok(Reply::Png(png(&crate::viz::grid::grid_image(&imgs, spec.shape, ncol))?, vec![]))
        }
        f => Err(ApiError::bad(format!("format '{f}': use \"json\" or \"png\""))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodeBody {
    indices: Vec<i64>,
}

pub fn encode(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let body: EncodeBody = c.json()?;
    batch_size("indices", body.indices.len())?;
    let l = r.get()?;
    let spec = &l.run.model.spec;
    if !spec.kind.has_encoder() {
        return Err(ApiError::bad(format!(
            "model '{}' has no encoder (a GAN only generates): use samples instead",
            spec.kind.name()
        )));
    }
    let test = l.test()?;
    let idx = test_indices(test, &body.indices)?;
    let sub = test.subset(&idx);
    let z = l.run.model.encode_dataset(&sub).map_err(|e| ApiError::bad(format!("{e:#}")))?;
    let pixels = unit(&sub.images);
    Ok(Reply::Json(json!({
        "codes": z.chunks(spec.latent_dim).map(short).collect::<Vec<_>>(),
        "labels": sub.labels,
        "images": data_urls(&pixels, spec.shape, 1)?,
    })))
}

pub fn samples(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&["n", "seed", "label", "attrs"])?;
    let n: usize = c.param("n", 16)?;
    batch_size("n", n)?;
    let seed: u64 = c.param("seed", 0)?;
    let label: Option<i64> = c.opt("label")?;
    let attrs: Option<String> = c.opt("attrs")?;
    let l = r.get()?;
    let cond = conds(&l, label.map(Labels::One), attrs.as_deref(), n)?;
    let z = l.run.prior_sheet(n, seed);
    let imgs = l.run.model.decode_host(&z, &cond);
    let spec = &l.run.model.spec;
    let labels: Vec<i64> = match (label, spec.by_class()) {
        (Some(k), true) => vec![k; n],
        (None, true) => vec![0; n],
        _ => Vec::new(),
    };
    Ok(Reply::Json(json!({
        "codes": z.chunks(spec.latent_dim).map(short).collect::<Vec<_>>(),
        "labels": (!labels.is_empty()).then_some(labels),
        "images": data_urls(&imgs, spec.shape, 1)?,
    })))
}

pub fn test_image(r: &ExploredRun, c: &Call, file: &str) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let Some(i) = file.strip_suffix(".png").and_then(|s| s.parse::<i64>().ok()) else {
        return Err(ApiError::not_found(format!("'{file}': test images are named INDEX.png")));
    };
    let l = r.get()?;
    let test = l.test()?;
    let idx = test_indices(test, &[i])?;
    let pixels = unit(test.image(idx[0]));
    Ok(Reply::Png(image_png(&pixels, test.shape, 1)?, vec![]))
}

/// Bytes of metrics.jsonl read per request at most (the page polls again for the rest).
const METRICS_CHUNK: u64 = 4 << 20;

pub fn metrics(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&["from"])?;
    let from: u64 = c.param("from", 0)?;
    let path = r.dir().metrics();
    let status = run_status(r);
    let Ok(mut f) = std::fs::File::open(&path) else {
        return Ok(Reply::Json(json!({ "records": [], "next": 0, "reset": from > 0, "status": status })));
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // The log shrank: a resume rewrote it from its checkpoint. Start again.
    let (from, reset) = if from > len { (0, true) } else { (from, false) };
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(from))
        .and_then(|_| f.take(METRICS_CHUNK.min(len - from)).read_to_end(&mut buf))
        .map_err(|e| ApiError::conflict(format!("cannot read {}: {e}", path.display())))?;
    // Only whole lines: the writer may be in the middle of one.
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let records: Vec<Value> =
        buf[..whole].split(|&b| b == b'\n').filter_map(|line| serde_json::from_slice::<Value>(line).ok()).collect();
    Ok(Reply::Json(json!({ "records": records, "next": from + whole as u64, "reset": reset, "status": status })))
}

/// "training (pid N)" while a process holds the run, else how its last session ended.
fn run_status(r: &ExploredRun) -> String {
    match crate::run::lock::holder(&r.path) {
        Some(pid) => format!("training (pid {pid})"),
        None => Summary::load(&r.dir().summary()).map_or_else(|_| "not finished".into(), |s| s.status.to_string()),
    }
}

pub fn latest_samples(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&["t"])?;
    let newest = std::fs::read_dir(r.dir().samples())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let epoch: u64 = name.strip_prefix("epoch-")?.strip_suffix(".png")?.parse().ok()?;
            Some((epoch, e.path()))
        })
        .max_by_key(|(epoch, _)| *epoch);
    let Some((epoch, path)) = newest else {
        return Err(ApiError::not_found(format!("run '{}' has no sample grid yet", r.id)));
    };
    let bytes = std::fs::read(&path).map_err(|e| ApiError::conflict(format!("cannot read {}: {e}", path.display())))?;
    Ok(Reply::Png(bytes, vec![("X-Epoch", epoch.to_string())]))
}

pub fn eval_json(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let path = r.dir().eval();
    let bytes = std::fs::read(&path).map_err(|_| {
        ApiError::not_found(format!("run '{}' has no eval.json (run `latentlab eval {}`)", r.id, r.path.display()))
    })?;
    Ok(Reply::File(bytes, "application/json"))
}

pub fn report(r: &ExploredRun, c: &Call) -> ApiResult<Reply> {
    c.check_query(&[])?;
    let path = find_report(&r.path)
        .ok_or_else(|| ApiError::not_found(format!("no comparison report includes run '{}'", r.id)))?;
    let bytes = std::fs::read(&path).map_err(|e| ApiError::conflict(format!("cannot read {}: {e}", path.display())))?;
    Ok(Reply::File(bytes, "text/html; charset=utf-8"))
}

/// The comparison report that includes `run`: a `report*.html` in the run's parent folder (where
/// `compare` puts its runs and page) whose `report*.json` lists the run.
fn find_report(run: &Path) -> Option<PathBuf> {
    let me = run.canonicalize().ok()?;
    let parent = me.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with("report") && name.ends_with(".json") && p.with_extension("html").is_file()
        })
        .filter(|p| {
            let Ok(v) = std::fs::read(p).map(|b| serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null)) else {
                return false;
            };
            v["runs"].as_array().is_some_and(|runs| {
                runs.iter().any(|x| {
                    let listed = PathBuf::from(x["path"].as_str().unwrap_or(""));
                    // Paths in report.json are as `compare` was given them: relative to where it ran.
                    listed.canonicalize().ok().as_deref() == Some(&me) || listed.file_name() == me.file_name()
                })
            })
        })
        .map(|p| p.with_extension("html"))
        .collect();
    found.sort();
    found.into_iter().next()
}

fn batch_size(what: &str, n: usize) -> ApiResult<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::bad(format!("{what}: give 1 to {MAX_BATCH} per request, got {n}")));
    }
    Ok(())
}

fn test_indices(test: &crate::data::Dataset, indices: &[i64]) -> ApiResult<Vec<usize>> {
    indices
        .iter()
        .map(|&i| {
            usize::try_from(i).ok().filter(|&i| i < test.n).ok_or_else(|| {
                ApiError::bad(format!(
                    "test index {i} out of range: the test set has {} images (0..{})",
                    test.n,
                    test.n - 1
                ))
            })
        })
        .collect()
}

/// The condition rows to decode `n` codes with (`models::condition`): for a class model the given
/// class(es) checked against the model, or class 0; for an attribute model the given attributes
/// (`attrs`, e.g. "Smiling,-Male"), the rest at their mean; none for an unconditional model
/// (giving labels or attributes to a model that does not take them is an error).
fn conds(l: &Loaded, given: Option<Labels>, attrs: Option<&str>, n: usize) -> ApiResult<Vec<f32>> {
    let spec = &l.run.model.spec;
    let by_class = spec.by_class();
    let named = spec.cond_attributes();
    if let Some(a) = attrs {
        if named.is_empty() {
            return Err(ApiError::bad(format!(
                "attrs: model '{}' is not conditioned on attributes; leave attrs out",
                spec.kind.name()
            )));
        }
        if given.is_some() {
            return Err(ApiError::bad("labels and attrs: give one".to_string()));
        }
        if a.len() > 4000 {
            return Err(ApiError::bad("attrs: at most 4000 characters".to_string()));
        }
        let want = crate::models::condition::parse_attrs(a).map_err(|e| ApiError::bad(format!("attrs: {e}")))?;
        return spec.cond_rows(&Request::Attrs(want), n).map_err(|e| ApiError::bad(format!("attrs: {e}")));
    }
    let list = match given {
        None if by_class => vec![0; n],
        None if !named.is_empty() => {
            return spec.cond_rows(&Request::Attrs(vec![]), n).map_err(|e| ApiError::bad(format!("{e}")));
        }
        // Text models decode with the caption of class 0 unless a caption is given.
        None if spec.kind.decl().text => return Ok(spec.class_rows_of(&vec![0; n])),
        None => return Ok(vec![]),
        Some(_) if !spec.is_conditioned() => {
            return Err(ApiError::bad(format!(
                "labels: model '{}' is not conditional; leave labels out",
                spec.kind.name()
            )));
        }
        Some(_) if !by_class => {
            return Err(ApiError::bad(format!(
                "labels: model '{}' is not conditioned on a class but on {}; leave labels out{}",
                spec.kind.name(),
                spec.condition().describe(),
                if named.is_empty() { "" } else { " (use attrs)" }
            )));
        }
        Some(Labels::One(k)) => vec![k; n],
        Some(Labels::Each(v)) if v.len() == n => v,
        Some(Labels::Each(v)) => {
            return Err(ApiError::bad(format!(
                "labels: {} given for {n} codes (give one per code, or one number)",
                v.len()
            )));
        }
    };
    let k = spec.num_classes;
    let labels = list
        .into_iter()
        .map(|c| {
            u8::try_from(c).ok().filter(|&c| (c as usize) < k).ok_or_else(|| {
                ApiError::bad(format!(
                    "label {c} out of range: the model knows classes 0..{} ({})",
                    k - 1,
                    l.run.class_names.join(", ")
                ))
            })
        })
        .collect::<ApiResult<Vec<u8>>>()?;
    Ok(spec.class_rows_of(&labels))
}

fn png(img: &image::RgbImage) -> ApiResult<Vec<u8>> {
    crate::viz::grid::png_bytes(img).map_err(|e| ApiError { status: 500, message: format!("PNG encoding failed: {e}") })
}

/// One image (values in [0,1], C×H×W) as a PNG, each pixel a `scale`×`scale` block.
fn image_png(pixels: &[f32], shape: ImageShape, scale: u32) -> ApiResult<Vec<u8>> {
    png(&crate::viz::grid::image_rgb(pixels, shape, scale))
}

fn data_urls(images: &[f32], shape: ImageShape, scale: u32) -> ApiResult<Vec<String>> {
    images
        .chunks(shape.len())
        .map(|img| {
            let bytes = image_png(img, shape, scale)?;
            Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
        })
        .collect()
}

/// f32 values as the f64s with the same shortest decimal form, so JSON carries "0.1" rather than
/// the f64 expansion of the f32 (0.10000000149011612): half the bytes, and the same f32 parsed back.
pub fn short(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| format!("{x}").parse().unwrap_or(0.0)).collect()
}
