//! The screen and its certificate: centred f32 point sets, sgemm-blocked squared distances, and the
//! exact re-rank that proves no screened-out point belongs to the k nearest.

use std::ops::Range;

use anyhow::{Result, bail};
use rayon::prelude::*;

use super::{QUERY_BLOCK, REF_BLOCK, SLACK, exact_sq_dist};

/// A point set prepared for screening: centred copy plus squared norms.
pub(super) struct Points<'a> {
    raw: &'a [f32],
    centred: Vec<f32>,
    pub(super) sq_norms: Vec<f32>,
    max_sq_norm: f64,
    n: usize,
    dim: usize,
}

impl<'a> Points<'a> {
    pub(super) fn new(raw: &'a [f32], dim: usize, centre: &[f64]) -> Result<Self> {
        let n = raw.len() / dim;
        let mut centred = vec![0.0f32; raw.len()];
        let mut sq_norms = vec![0.0f32; n];
        centred.par_chunks_mut(dim).zip(raw.par_chunks(dim)).zip(sq_norms.par_iter_mut()).for_each(
            |((out, row), norm)| {
                let mut s = 0.0f64;
                for ((o, &x), &c) in out.iter_mut().zip(row).zip(centre) {
                    *o = (f64::from(x) - c) as f32;
                    s += f64::from(*o) * f64::from(*o);
                }
                *norm = s as f32;
            },
        );
        let max_sq_norm = sq_norms.iter().fold(0.0f64, |m, &v| m.max(f64::from(v)));
        // Squared distances up to 4·max must stay finite in f32.
        if max_sq_norm > 1e37 {
            bail!("feature values too large for f32 distance computation (squared norm {max_sq_norm:e})");
        }
        Ok(Self { raw, centred, sq_norms, max_sq_norm, n, dim })
    }

    pub(super) fn row(&self, i: usize) -> &[f32] {
        &self.raw[i * self.dim..(i + 1) * self.dim]
    }
}

/// Column means in f64, used as the common centre of both sets.
pub(super) fn mean_of(data: &[f32], dim: usize) -> Vec<f64> {
    let n = data.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    if n > 0 {
        mean.iter_mut().for_each(|m| *m /= n as f64);
    }
    mean
}

/// Bound factor c such that |screened − exact| ≤ c·(‖q‖² + ‖r‖²) (centred norms).
///
/// Dot-product rounding is at most d·u·‖q‖‖r‖ in any summation order; norms, the final additions and the
/// centring rounding add a few more u·(‖q‖² + ‖r‖²). Using f32::EPSILON = 2u doubles the margin for safety.
pub(super) fn screen_tolerance(dim: usize) -> f64 {
    (dim as f64 + 16.0) * f64::from(f32::EPSILON)
}

/// Fills `out[..rows.len() * cols.len()]` (row-major) with screened squared distances, clamped at 0.
pub(super) fn screen_block(q: &Points, rows: &Range<usize>, r: &Points, cols: &Range<usize>, out: &mut [f32]) {
    let (m, n, k) = (rows.len(), cols.len(), q.dim);
    let out = &mut out[..m * n];
    let a = &q.centred[rows.start * k..rows.end * k];
    let b = &r.centred[cols.start * k..cols.end * k];
    // SAFETY: `a` is m×k row-major, `b` (n×k row-major) is read as its k×n transpose via strides (1, k), and `out`
    // is m×n row-major; every slice has exactly the length those shapes and strides address. β = 0 means `out` is
    // only written.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            -2.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    let r_norms = &r.sq_norms[cols.clone()];
    for (row, &qn) in out.chunks_exact_mut(n).zip(&q.sq_norms[rows.clone()]) {
        for (v, &rn) in row.iter_mut().zip(r_norms) {
            *v = (*v + qn + rn).max(0.0);
        }
    }
}

/// Splits `n` queries into blocks so that every core gets several.
pub(super) fn query_blocks(n: usize) -> Vec<Range<usize>> {
    let per = n.div_ceil(4 * rayon::current_num_threads().max(1)).clamp(1, QUERY_BLOCK);
    (0..n).step_by(per).map(|s| s..(s + per).min(n)).collect()
}

pub(super) fn ref_blocks(n: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n).step_by(REF_BLOCK).map(move |s| s..(s + REF_BLOCK).min(n))
}

/// Inserts `item` into the ascending list `list`, keeping at most `cap` entries.
fn push_top<T: PartialOrd + Copy>(list: &mut Vec<T>, cap: usize, item: T) {
    if list.len() == cap {
        if list.last().is_some_and(|w| item >= *w) {
            return;
        }
        list.pop();
    }
    let pos = list.partition_point(|x| *x < item);
    list.insert(pos, item);
}

/// Exact k nearest neighbours (squared distance, index), ascending; `skip_self` excludes index i for query i.
pub(super) fn knn_exact(q: &Points, r: &Points, k: usize, skip_self: bool) -> Vec<Vec<(f64, usize)>> {
    let available = r.n - usize::from(skip_self);
    let keep = (k + SLACK).min(available);
    let tol = screen_tolerance(q.dim);
    let blocks = query_blocks(q.n);
    let per_block: Vec<Vec<Vec<(f64, usize)>>> = blocks
        .par_iter()
        .map(|rows| {
            let mut cands: Vec<Vec<(f32, usize)>> = vec![Vec::with_capacity(keep + 1); rows.len()];
            let mut buf = vec![0.0f32; rows.len() * REF_BLOCK];
            for cols in ref_blocks(r.n) {
                screen_block(q, rows, r, &cols, &mut buf);
                for (i, (row, list)) in buf.chunks_exact(cols.len()).zip(cands.iter_mut()).enumerate() {
                    let qi = rows.start + i;
                    for (j, &d2) in row.iter().enumerate() {
                        if list.len() == keep && d2 >= list[keep - 1].0 {
                            continue;
                        }
                        let rj = cols.start + j;
                        if !(skip_self && rj == qi) {
                            push_top(list, keep, (d2, rj));
                        }
                    }
                }
            }
            cands
                .into_iter()
                .enumerate()
                .map(|(i, list)| finish_query(q, rows.start + i, r, &list, k, keep < available, skip_self, tol))
                .collect()
        })
        .collect();
    per_block.into_iter().flatten().collect()
}

/// Re-ranks one query's screened candidates exactly, certifying them against everything screened out.
#[allow(clippy::too_many_arguments)]
fn finish_query(
    q: &Points,
    qi: usize,
    r: &Points,
    cands: &[(f32, usize)],
    k: usize,
    some_discarded: bool,
    skip_self: bool,
    tol: f64,
) -> Vec<(f64, usize)> {
    let query = q.row(qi);
    let mut exact: Vec<(f64, usize)> = cands.iter().map(|&(_, j)| (exact_sq_dist(query, r.row(j)), j)).collect();
    exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    exact.truncate(k);
    if some_discarded {
        // Every discarded point screened at ≥ the worst kept candidate, so its exact squared distance is at least
        // that minus the screening error; strictly beyond the k-th exact distance means it cannot belong (or tie).
        let worst_kept = f64::from(cands[cands.len() - 1].0);
        let margin = tol * (f64::from(q.sq_norms[qi]) + r.max_sq_norm);
        if worst_kept - margin <= exact[k - 1].0 {
            #[cfg(test)]
            super::tests::FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut top = Vec::with_capacity(k + 1);
            for j in (0..r.n).filter(|&j| !(skip_self && j == qi)) {
                push_top(&mut top, k, (exact_sq_dist(query, r.row(j)), j));
            }
            return top;
        }
    }
    exact
}
