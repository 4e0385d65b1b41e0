//! Image arrays as other tools save them, for `eval --samples`: numpy `.npy` or `.npz`, float32,
//! float64, float16 in [0,1] or uint8 in 0–255, either byte order, C or Fortran order, laid out
//! N×C×H×W, N×H×W×C (PIL, imageio, TensorFlow) or N×H×W. The header is parsed by `npyz`; what
//! a file claims (header length, shape, compressed size) is checked against the bytes it has
//! before anything is allocated, so a hostile file is a named error.

use super::ImageShape;
use anyhow::{Context, Result, bail};
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};
use std::io::Read;
use std::path::Path;

/// How the axes of a sample array map to images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// N×C×H×W (PyTorch, latentlab's own files).
    Nchw,
    /// N×H×W×C (PIL, imageio, TensorFlow).
    Nhwc,
    /// N×H×W (one channel).
    Nhw,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "NCHW (N×C×H×W)",
            Layout::Nhwc => "NHWC (N×H×W×C)",
            Layout::Nhw => "NHW (N×H×W)",
        }
    }
    /// The array shape this layout gives `n` images of `shape`.
    pub fn dims(self, n: usize, s: ImageShape) -> Vec<usize> {
        match self {
            Layout::Nchw => vec![n, s.channels, s.height, s.width],
            Layout::Nhwc => vec![n, s.height, s.width, s.channels],
            Layout::Nhw => vec![n, s.height, s.width],
        }
    }
    /// Index into an array of this layout of pixel (n, c, h, w).
    pub fn index(self, [n, c, h, w]: [usize; 4]) -> Vec<usize> {
        match self {
            Layout::Nchw => vec![n, c, h, w],
            Layout::Nhwc => vec![n, h, w, c],
            Layout::Nhw => vec![n, h, w],
        }
    }
}

/// An array read from a file: its shape as saved, its values in C order as f32 (uint8 already
/// scaled to [0,1]), and a description of where it came from for messages.
#[derive(Debug)]
pub struct Array {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
    /// e.g. "uint8", "float64 (big-endian)".
    pub dtype: String,
    /// The npz key it was read from, if any.
    pub key: Option<String>,
}

/// numpy's own default limit (`np.load(max_header_size=10000)`); also keeps the header parser's
/// recursion shallow on a file of nested brackets.
const MAX_HEADER: usize = 10_000;

/// Read a `.npy` or `.npz` (told apart by their magic bytes, not the name). `key` picks the
/// array of an npz; without it an npz must hold exactly one.
pub fn read(path: &Path, key: Option<&str>) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display();
    if bytes.starts_with(b"\x93NUMPY") {
        if let Some(k) = key {
            bail!("{name}: --key {k} applies to .npz archives, but this is a .npy file");
        }
        return parse_npy(&bytes).with_context(|| format!("{name}: not a readable .npy file"));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return read_npz(&bytes, key).map_err(|e| anyhow::anyhow!("{name}: {e:#}"));
    }
    bail!("{name}: not a .npy or .npz file (no numpy or zip signature)")
}

fn read_npz(bytes: &[u8], key: Option<&str>) -> Result<Array> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a readable .npz (zip) archive")?;
    // np.savez names each array KEY.npy; other members are not arrays.
    let names: Vec<String> = zip.file_names().map(|f| f.map(|f| f.into_owned())).collect::<Result<_, _>>()?;
    let keys: Vec<String> = names.iter().filter_map(|f| f.strip_suffix(".npy")).map(str::to_string).collect();
    let key = match (key, keys.as_slice()) {
        (Some(k), _) if keys.iter().any(|x| x == k) => k.to_string(),
        (Some(k), _) => bail!("no array '{k}' in the archive; its keys are: {}", list(&keys)),
        (None, [only]) => only.clone(),
        (None, []) => bail!("the .npz archive holds no arrays"),
        (None, _) => bail!("the .npz archive holds several arrays ({}); choose one with --key NAME", list(&keys)),
    };
    let mut f = zip.by_name(&format!("{key}.npy")).with_context(|| format!("array '{key}'"))?;
    // Deflate expands at most ~1032×; a larger claim is a lie (or a bomb), refused before reading.
    if f.compressed_size() > bytes.len() as u64 || f.size() > f.compressed_size().saturating_mul(1100).max(1 << 16) {
        bail!("array '{key}' claims {} bytes from {} compressed", f.size(), f.compressed_size());
    }
    // One byte past the claim, so that the reader reaches its end and checks the CRC.
    let size = f.size();
    let mut member = Vec::new();
    (&mut f).take(size + 1).read_to_end(&mut member).with_context(|| format!("array '{key}': corrupt data"))?;
    if member.len() as u64 != size {
        bail!("array '{key}' holds {} bytes, not the {size} its entry claims", member.len());
    }
    let mut a = parse_npy(&member).with_context(|| format!("array '{key}' is not a readable .npy"))?;
    a.key = Some(key);
    Ok(a)
}

fn list(keys: &[String]) -> String {
    keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ")
}

/// Parse one `.npy` held in memory.
fn parse_npy(b: &[u8]) -> Result<Array> {
    // Pre-header: magic (6), version (2), header length (2 bytes in v1, 4 in v2/v3).
    if !b.starts_with(b"\x93NUMPY") {
        bail!("no .npy signature");
    }
    let (len_bytes, start) = match b.get(6) {
        Some(1) => (2, 10),
        Some(2 | 3) => (4, 12),
        Some(v) => bail!("unknown .npy format version {v}"),
        None => bail!("file ends inside the magic string"),
    };
    let Some(lb) = b.get(8..8 + len_bytes) else { bail!("file ends before the header length") };
    let hl = lb.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize);
    if hl > MAX_HEADER {
        bail!("header of {hl} bytes is longer than numpy's limit of {MAX_HEADER}");
    }
    if start + hl > b.len() {
        bail!("header claims {hl} bytes but the file has {} after the pre-header", b.len().saturating_sub(start));
    }
    // npyz's parse errors quote the whole header over several lines: keep the first, short.
    let header = NpyHeader::from_reader(&b[..start + hl]).map_err(|e| {
        let e = e.to_string();
        anyhow::anyhow!("bad header: {}", e.lines().next().unwrap_or("").chars().take(160).collect::<String>())
    })?;
    let data = &b[start + hl..];
    let DType::Plain(ts) = header.dtype() else { bail!("structured dtypes are not image arrays") };
    let (tc, size) = (ts.type_char(), ts.size_field());
    let kind = match (tc, size) {
        (TypeChar::Float, 4) => "float32",
        (TypeChar::Float, 8) => "float64",
        (TypeChar::Float, 2) => "float16",
        (TypeChar::Uint, 1) => "uint8",
        _ => bail!("dtype '{ts}' is not supported (use float32, float64 or float16 in [0, 1], or uint8 in 0–255)"),
    };
    let dims: Vec<usize> = header.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    // Checked here: npyz's own product wraps (see Cargo.toml).
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let need = count.and_then(|c| c.checked_mul(size as usize));
    if need != Some(data.len()) || count.map(|c| c as u64) != Some(header.len()) {
        bail!(
            "payload is {} bytes, but shape {dims:?} of {kind} needs {}",
            data.len(),
            need.map_or("more than fits in memory".to_string(), |n| n.to_string())
        );
    }
    let order = header.order();
    let file = NpyFile::with_header(header, data);
    let bad = |e: std::io::Error| anyhow::anyhow!("cannot decode {kind} data: {e}");
    let values: Vec<f32> = match kind {
        "float32" => file.into_vec::<f32>().map_err(bad)?,
        "float64" => file.into_vec::<f64>().map_err(bad)?.into_iter().map(|v| v as f32).collect(),
        "float16" => file.into_vec::<npyz::half::f16>().map_err(bad)?.into_iter().map(f32::from).collect(),
        _ => file.into_vec::<u8>().map_err(bad)?.into_iter().map(|v| v as f32 / 255.0).collect(),
    };
    let big = matches!(ts.endianness(), npyz::Endianness::Big) && size > 1;
    let dtype = format!("{kind}{}", if big { " (big-endian)" } else { "" });
    // Fortran order stores the first axis fastest; hand back C order like every other caller expects.
    let values = if order == Order::Fortran && dims.len() > 1 {
        let mut strides = vec![1; dims.len()];
        for k in 1..dims.len() {
            strides[k] = strides[k - 1] * dims[k - 1];
        }
        gather(&values, &dims, &strides)
    } else {
        values
    };
    Ok(Array { dims, values, dtype, key: None })
}

/// The array with shape `out` whose element at index i is `src[Σ i_k · strides[k]]`.
fn gather(src: &[f32], out: &[usize], strides: &[usize]) -> Vec<f32> {
    let total: usize = out.iter().product();
    let mut v = Vec::with_capacity(total);
    let mut idx = vec![0usize; out.len()];
    let mut off = 0usize;
    for _ in 0..total {
        v.push(src[off]);
        // Odometer step over `out`, keeping the source offset in step.
        for k in (0..out.len()).rev() {
            idx[k] += 1;
            off += strides[k];
            if idx[k] < out[k] {
                break;
            }
            off -= strides[k] * out[k];
            idx[k] = 0;
        }
    }
    v
}

/// Images of a sample file, N×C×H×W, with the layout they were read as.
#[derive(Debug)]
pub struct Samples {
    pub images: Vec<f32>,
    pub n: usize,
    pub layout: Layout,
    /// A sentence for stderr: what was read and how it was taken.
    pub note: String,
}

/// Read a sample file and reorder it to N×C×H×W for images of `shape`, inferring the layout
/// unless `layout` is given. Values are not range-checked here (see `eval::evaluate::check_samples`).
pub fn load_samples(path: &Path, key: Option<&str>, shape: ImageShape, layout: Option<Layout>) -> Result<Samples> {
    let a = read(path, key)?;
    let n = a.dims.first().copied().unwrap_or(0);
    let fits = |l: Layout| l.dims(n, shape) == a.dims && (l != Layout::Nhw || shape.channels == 1);
    let candidates: Vec<Layout> = [Layout::Nchw, Layout::Nhwc, Layout::Nhw].into_iter().filter(|&l| fits(l)).collect();
    let (s, name) = (shape, path.display());
    let expected = format!(
        "N×{c}×{h}×{w} (NCHW), N×{h}×{w}×{c} (NHWC){}",
        if s.channels == 1 { format!(" or N×{h}×{w} (NHW)", h = s.height, w = s.width) } else { String::new() },
        c = s.channels,
        h = s.height,
        w = s.width
    );
    let layout_arg = layout;
    let layout = match (layout, candidates.first()) {
        (Some(l), _) if fits(l) => l,
        (Some(l), _) => bail!(
            "{name}: array has shape {:?} but --layout {} needs {:?} for the dataset's {}×{}×{} images",
            a.dims,
            l.name(),
            l.dims(n, s),
            s.channels,
            s.height,
            s.width
        ),
        (None, Some(&l)) => l,
        (None, None) => bail!(
            "{name}: samples have shape {:?} but the dataset's images are {}×{}×{} (expected {expected})",
            a.dims,
            s.channels,
            s.height,
            s.width
        ),
    };
    let from = a.key.as_ref().map_or(String::new(), |k| format!("['{k}']"));
    let mut note = format!("{name}{from}: {} array {:?} read as {}", a.dtype, a.dims, layout.name());
    if a.dtype.starts_with("uint8") {
        note += ", scaled by 1/255";
    }
    // Only NCHW and NHWC can both fit (C = H = W); say so, as the guess may be wrong.
    if layout_arg.is_none() && candidates.len() > 1 {
        note += &format!(
            " (ambiguous for {}×{}×{} images: NHWC fits too; choose with --layout nchw|nhwc)",
            s.channels, s.height, s.width
        );
    }
    let images = match layout {
        // Source strides of an N×H×W×C array, visited in N, C, H, W order.
        Layout::Nhwc => {
            let c = s.channels;
            gather(&a.values, &[n, c, s.height, s.width], &[s.len(), 1, s.width * c, c])
        }
        Layout::Nchw | Layout::Nhw => a.values,
    };
    Ok(Samples { images, n, layout, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_transposes_fortran_and_channels_last() {
        // 2×3 stored in Fortran order: columns first.
        let f = [1., 4., 2., 5., 3., 6.];
        assert_eq!(gather(&f, &[2, 3], &[1, 2]), vec![1., 2., 3., 4., 5., 6.]);
        // One 1×2 image with 2 channels, N×H×W×C → N×C×H×W.
        let nhwc = [1., 10., 2., 20.];
        assert_eq!(gather(&nhwc, &[1, 2, 1, 2], &[4, 1, 4, 2]), vec![1., 2., 10., 20.]);
    }
}
