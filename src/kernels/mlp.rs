//! Inference of a whole MLP decoder scored by the Bernoulli NLL, in row blocks: each block of
//! rows goes through every layer and into the per-row NLL while its activations are still in the
//! core's cache, on one thread with single-threaded gemms (the blocks are spread over the pool).
//! This is the inner loop of importance-weighted likelihood bounds (K decoder passes per test
//! image), where materialising the [rows, pixels] logits costs more than scoring them.

use super::act::{Act, apply_inplace_serial};
use super::gemm::{Par, matmul, view};
use super::loss::row_nll;
use rayon::prelude::*;
use std::cell::RefCell;

/// One fully connected layer: W [fin, fout] (burn's layout), b [fout].
pub struct Dense<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub fin: usize,
    pub fout: usize,
}

/// Rows per block: the widest activations of a block (~0.8 MB for 784 outputs) fit a core's L2.
const BLOCK: usize = 512;

thread_local! {
    static BUFS: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Per-row Σⱼ softplus(lⱼ) − tⱼ·lⱼ of the logits l = MLP(x) (`hidden` between layers, none after
/// the last), where row r is scored against target row r / `group`.
pub fn bce_rows(layers: &[Dense], hidden: Act, x: &[f32], t: &[f32], group: usize) -> Vec<f32> {
    assert!(!layers.is_empty(), "an MLP has at least one layer");
    for pair in layers.windows(2) {
        assert_eq!(pair[0].fout, pair[1].fin, "MLP layer widths do not chain");
    }
    let (fin, d) = (layers[0].fin, layers[layers.len() - 1].fout);
    let rows = x.len() / fin.max(1);
    assert!(group >= 1 && t.len() * group == rows * d, "targets do not match the rows");
    let width = layers.iter().map(|l| l.fout).max().unwrap_or(0);
    let mut out = vec![0.0f32; rows];
    out.par_chunks_mut(BLOCK).enumerate().for_each(|(i, o)| {
        let (r0, nb) = (i * BLOCK, o.len());
        BUFS.with(|b| {
            let mut b = b.borrow_mut();
            for buf in b.iter_mut() {
                if buf.len() < nb * width {
                    buf.resize(nb * width, 0.0);
                }
            }
            let [a, c] = &mut *b;
            let xb = &x[r0 * fin..(r0 + nb) * fin];
            // Layers alternate between the two buffers: a ← x, c ← a, a ← c, …
            for (li, l) in layers.iter().enumerate() {
                let (src, dst): (&[f32], &mut [f32]) = match li {
                    0 => (xb, &mut a[..nb * l.fout]),
                    _ if li % 2 == 1 => (&a[..nb * l.fin], &mut c[..nb * l.fout]),
                    _ => (&c[..nb * l.fin], &mut a[..nb * l.fout]),
                };
                for row in dst.chunks_mut(l.fout) {
                    row.copy_from_slice(l.b);
                }
                matmul(nb, l.fout, l.fin, dst, l.fout, true, view(src, l.fin, 1), view(l.w, l.fout, 1), Par::Seq);
                if li + 1 < layers.len() {
                    apply_inplace_serial(dst, hidden);
                }
            }
            let cur: &[f32] = if layers.len() % 2 == 1 { &a[..nb * d] } else { &c[..nb * d] };
            for (j, v) in o.iter_mut().enumerate() {
                let tr = (r0 + j) / group;
                *v = row_nll(&cur[j * d..(j + 1) * d], &t[tr * d..(tr + 1) * d]);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equals running the layers one by one and scoring the replicated targets.
    #[test]
    fn matches_layer_by_layer_scoring() {
        let dims = [7usize, 33, 20];
        let w: Vec<Vec<f32>> =
            dims.windows(2).map(|p| (0..p[0] * p[1]).map(|i| ((i * 37) % 19) as f32 / 19.0 - 0.5).collect()).collect();
        let b: Vec<Vec<f32>> =
            dims[1..].iter().map(|&n| (0..n).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect()).collect();
        let layers: Vec<Dense> =
            (0..2).map(|i| Dense { w: &w[i], b: &b[i], fin: dims[i], fout: dims[i + 1] }).collect();
        let (rows, group) = (600, 3);
        let x: Vec<f32> = (0..rows * 7).map(|i| ((i * 13) % 23) as f32 / 23.0 - 0.5).collect();
        let t: Vec<f32> = (0..rows / group * 20).map(|i| (i % 2) as f32).collect();
        let got = bce_rows(&layers, Act::Relu, &x, &t, group);
        let h = super::super::linear::forward(&x, &w[0], &b[0], 7, 33, Act::Relu);
        let l = super::super::linear::forward(&h, &w[1], &b[1], 33, 20, Act::None);
        let want = super::super::loss::bce_rows(&l, &t, 20, group);
        for (r, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "row {r}: {g} vs {w}");
        }
    }
}
