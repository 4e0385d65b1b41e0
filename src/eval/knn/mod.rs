//! Exact Euclidean (L2) k-nearest-neighbour search: the distance engine shared by the evaluation metrics.
//!
//! All-pairs distances are *screened* with the expansion ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b, which turns the work into
//! blocked f32 sgemm calls (`matrixmultiply`) spread over all cores (`rayon`); rows are streamed in blocks, so no N×M
//! matrix is ever materialised. Screening alone loses digits to cancellation (duplicates would come out at ~1e-3
//! instead of 0), so results are then made *exact*: the surviving candidates are re-ranked with a direct f64
//! difference sum ([`exact_sq_dist`]), and a rigorous bound on the f32 rounding error of the screen certifies that no
//! closer point was discarded. Queries that cannot be certified (e.g. many exactly tied neighbours) fall back to a
//! direct scan. Both sets are centred on the reference mean first (distances are translation-invariant), which keeps
//! the error bound tight for features with a large common offset. The outcome equals a brute-force search with ties
//! broken by the lower reference index.

mod screen;
#[cfg(test)]
mod tests;

use anyhow::{Result, bail};
use rayon::prelude::*;
use screen::{Points, knn_exact, mean_of, query_blocks, ref_blocks, screen_block, screen_tolerance};

/// Queries per sgemm block: large enough to amortise packing each reference block, small enough to give every
/// core several blocks.
const QUERY_BLOCK: usize = 512;
/// References per sgemm block; QUERY_BLOCK × REF_BLOCK f32 scratch (4 MiB) per worker.
const REF_BLOCK: usize = 2048;
/// Extra screened candidates kept beyond k, so that the exact re-rank can almost always certify its answer.
const SLACK: usize = 16;

/// Checks a row-major set of `dim`-vectors and returns its row count.
pub(crate) fn check_set(name: &str, data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        bail!("{name}: feature dimension must be at least 1, got 0");
    }
    if !data.len().is_multiple_of(dim) {
        bail!("{name}: length {} is not a multiple of the feature dimension {dim}", data.len());
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        bail!("{name}: non-finite value {} at row {}, column {}", data[i], i / dim, i % dim);
    }
    Ok(data.len() / dim)
}

/// Squared distance summed in f64 over exact f32 differences: the reference every screened result is checked against.
pub(crate) fn exact_sq_dist(a: &[f32], b: &[f32]) -> f64 {
    // Four independent accumulators let the compiler vectorise without reassociating a single sum.
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            let d = f64::from(x[l]) - f64::from(y[l]);
            acc[l] += d * d;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        let d = f64::from(*x) - f64::from(*y);
        s += d * d;
    }
    s
}

/// The f32 distance reported for an exact squared distance.
pub(crate) fn to_dist(sq: f64) -> f32 {
    sq.sqrt() as f32
}

/// For each query, its `k` nearest references as (reference index, L2 distance), ascending by distance (ties by
/// index). Exact: equal to brute force, with exact duplicates at distance 0.
pub fn nearest(queries: &[f32], refs: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
    let nq = check_set("queries", queries, dim)?;
    let nr = check_set("references", refs, dim)?;
    if k == 0 {
        bail!("k must be at least 1");
    }
    if k > nr {
        bail!("k = {k} exceeds the number of reference points ({nr})");
    }
    if nq == 0 {
        return Ok(Vec::new());
    }
    let centre = mean_of(refs, dim);
    let (q, r) = (Points::new(queries, dim, &centre)?, Points::new(refs, dim, &centre)?);
    Ok(knn_exact(&q, &r, k, false)
        .into_iter()
        .map(|list| list.into_iter().map(|(d2, j)| (j, to_dist(d2))).collect())
        .collect())
}

/// For each point, the L2 distance to its k-th nearest *other* point (itself excluded by index, so duplicates
/// count at distance 0). This is the k-NN ball radius of improved precision/recall.
pub fn kth_nn_self(points: &[f32], dim: usize, k: usize) -> Result<Vec<f32>> {
    let n = check_set("points", points, dim)?;
    if k == 0 {
        bail!("k must be at least 1");
    }
    if n <= k {
        bail!("the k-th nearest other point needs more than k points: k = {k}, got {n}");
    }
    let centre = mean_of(points, dim);
    let p = Points::new(points, dim, &centre)?;
    Ok(knn_exact(&p, &p, k, true).into_iter().map(|list| to_dist(list[k - 1].0)).collect())
}

/// For each query, whether it lies inside at least one ball (exact distance ≤ radius) around `centres`.
///
/// Decided from the screened distance where the error bound allows, and by the exact distance otherwise, so the
/// answer equals brute force while only a thin band of pairs is recomputed.
pub fn within_any_ball(queries: &[f32], centres: &[f32], radii: &[f32], dim: usize) -> Result<Vec<bool>> {
    let nq = check_set("queries", queries, dim)?;
    let nc = check_set("ball centres", centres, dim)?;
    if radii.len() != nc {
        bail!("got {} radii for {nc} ball centres", radii.len());
    }
    if let Some(i) = radii.iter().position(|r| !(r.is_finite() && *r >= 0.0)) {
        bail!("radius {i} is {}, expected a finite value ≥ 0", radii[i]);
    }
    if nq == 0 || nc == 0 {
        return Ok(vec![false; nq]);
    }
    let centre = mean_of(centres, dim);
    let (q, c) = (Points::new(queries, dim, &centre)?, Points::new(centres, dim, &centre)?);
    let tol = screen_tolerance(dim);
    // Per-centre decision thresholds on the screened squared distance; 1e-6 relative absorbs the f32 rounding of
    // the reported distance, the query's own share of the error is added per row.
    let (sure_in, sure_out): (Vec<f64>, Vec<f64>) = radii
        .iter()
        .zip(&c.sq_norms)
        .map(|(&r, &cn)| {
            let r2 = f64::from(r) * f64::from(r);
            let e = tol * f64::from(cn);
            (r2 * (1.0 - 1e-6) - e, r2 * (1.0 + 1e-6) + e)
        })
        .unzip();
    let blocks = query_blocks(nq);
    let per_block: Vec<Vec<bool>> = blocks
        .par_iter()
        .map(|rows| {
            let mut inside = vec![false; rows.len()];
            let mut remaining = rows.len();
            let mut buf = vec![0.0f32; rows.len() * REF_BLOCK];
            for cols in ref_blocks(nc) {
                if remaining == 0 {
                    break;
                }
                screen_block(&q, rows, &c, &cols, &mut buf);
                for (i, (row, hit)) in buf.chunks_exact(cols.len()).zip(inside.iter_mut()).enumerate() {
                    if *hit {
                        continue;
                    }
                    let qi = rows.start + i;
                    let e = tol * f64::from(q.sq_norms[qi]);
                    for (j, &d2) in row.iter().enumerate() {
                        let (d2, cj) = (f64::from(d2), cols.start + j);
                        if d2 >= sure_out[cj] + e {
                            continue;
                        }
                        if d2 <= sure_in[cj] - e || to_dist(exact_sq_dist(q.row(qi), c.row(cj))) <= radii[cj] {
                            *hit = true;
                            remaining -= 1;
                            break;
                        }
                    }
                }
            }
            inside
        })
        .collect();
    Ok(per_block.into_iter().flatten().collect())
}
