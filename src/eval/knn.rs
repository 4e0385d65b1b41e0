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

use std::ops::Range;

use anyhow::{Result, bail};
use rayon::prelude::*;

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

/// A point set prepared for screening: centred copy plus squared norms.
struct Points<'a> {
    raw: &'a [f32],
    centred: Vec<f32>,
    sq_norms: Vec<f32>,
    max_sq_norm: f64,
    n: usize,
    dim: usize,
}

impl<'a> Points<'a> {
    fn new(raw: &'a [f32], dim: usize, centre: &[f64]) -> Result<Self> {
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

    fn row(&self, i: usize) -> &[f32] {
        &self.raw[i * self.dim..(i + 1) * self.dim]
    }
}

/// Column means in f64, used as the common centre of both sets.
fn mean_of(data: &[f32], dim: usize) -> Vec<f64> {
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
fn screen_tolerance(dim: usize) -> f64 {
    (dim as f64 + 16.0) * f64::from(f32::EPSILON)
}

/// Fills `out[..rows.len() * cols.len()]` (row-major) with screened squared distances, clamped at 0.
fn screen_block(q: &Points, rows: &Range<usize>, r: &Points, cols: &Range<usize>, out: &mut [f32]) {
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
fn query_blocks(n: usize) -> Vec<Range<usize>> {
    let per = n.div_ceil(4 * rayon::current_num_threads().max(1)).clamp(1, QUERY_BLOCK);
    (0..n).step_by(per).map(|s| s..(s + per).min(n)).collect()
}

fn ref_blocks(n: usize) -> impl Iterator<Item = Range<usize>> {
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
fn knn_exact(q: &Points, r: &Points, k: usize, skip_self: bool) -> Vec<Vec<(f64, usize)>> {
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
            tests::FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut top = Vec::with_capacity(k + 1);
            for j in (0..r.n).filter(|&j| !(skip_self && j == qi)) {
                push_top(&mut top, k, (exact_sq_dist(query, r.row(j)), j));
            }
            return top;
        }
    }
    exact
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts exact-scan fallbacks, so the test for them can check that the path really ran.
    pub(super) static FALLBACKS: AtomicUsize = AtomicUsize::new(0);

    fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random::<f32>()).collect()
    }

    /// Independent reference: plain f64 loop, full sort by (distance, index).
    fn brute(queries: &[f32], refs: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f64)>> {
        queries
            .chunks(dim)
            .map(|q| {
                let mut all: Vec<(f64, usize)> = refs
                    .chunks(dim)
                    .enumerate()
                    .map(|(j, r)| (q.iter().zip(r).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>(), j))
                    .collect();
                all.sort_by(|a, b| a.partial_cmp(b).unwrap());
                all.into_iter().take(k).map(|(d, j)| (j, d.sqrt())).collect()
            })
            .collect()
    }

    fn assert_matches(got: &[Vec<(usize, f32)>], want: &[Vec<(usize, f64)>]) {
        assert_eq!(got.len(), want.len());
        for (qi, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.len(), w.len());
            for ((gi, gd), (wi, wd)) in g.iter().zip(w) {
                assert_eq!(gi, wi, "query {qi}: index mismatch, got {g:?}, want {w:?}");
                assert!((*gd as f64 - wd).abs() <= 1e-6 * wd.max(1.0), "query {qi}: {gd} vs {wd}");
            }
        }
    }

    #[test]
    fn matches_brute_force_across_block_boundaries() {
        let dim = 7;
        let (q, r) = (random(300, dim, 1), random(2 * REF_BLOCK + 123, dim, 2));
        assert_matches(&nearest(&q, &r, dim, 5).unwrap(), &brute(&q, &r, dim, 5));
    }

    #[test]
    fn matches_brute_force_high_dim_and_k_equal_to_refs() {
        let dim = 300;
        let (q, r) = (random(40, dim, 3), random(60, dim, 4));
        assert_matches(&nearest(&q, &r, dim, 3).unwrap(), &brute(&q, &r, dim, 3));
        assert_matches(&nearest(&q, &r, dim, 60).unwrap(), &brute(&q, &r, dim, 60));
    }

    #[test]
    fn duplicate_query_finds_itself_at_zero() {
        let dim = 784;
        let r = random(500, dim, 5);
        let q: Vec<f32> = [17usize, 400].iter().flat_map(|&i| r[i * dim..(i + 1) * dim].to_vec()).collect();
        let got = nearest(&q, &r, dim, 2).unwrap();
        assert_eq!(got[0][0], (17, 0.0));
        assert_eq!(got[1][0], (400, 0.0));
        assert!(got[0][1].1 > 1.0);
    }

    #[test]
    fn large_common_offset_stays_exact() {
        // Without centring and certification, ‖a‖² ≈ 1e8 would swamp distances of order 1.
        let dim = 16;
        let shift = |v: Vec<f32>| v.into_iter().map(|x| x + 2500.0).collect::<Vec<_>>();
        let (q, r) = (shift(random(50, dim, 6)), shift(random(3000, dim, 7)));
        assert_matches(&nearest(&q, &r, dim, 4).unwrap(), &brute(&q, &r, dim, 4));
    }

    #[test]
    fn many_exact_ties_fall_back_correctly() {
        // 60 identical references plus noise: more tied candidates than the screen keeps, so the fallback runs.
        let dim = 8;
        let mut r = random(200, dim, 8);
        let p = r[..dim].to_vec();
        for i in 0..60 {
            r[(i * 3) * dim..(i * 3 + 1) * dim].copy_from_slice(&p);
        }
        let before = FALLBACKS.load(Ordering::Relaxed);
        let got = nearest(&p, &r, dim, 30).unwrap();
        assert!(FALLBACKS.load(Ordering::Relaxed) > before);
        assert_matches(&got, &brute(&p, &r, dim, 30));
        assert!(got[0].iter().all(|&(_, d)| d == 0.0));
        assert_eq!(got[0].iter().map(|&(j, _)| j).collect::<Vec<_>>(), (0..30).map(|i| 3 * i).collect::<Vec<_>>());
    }

    #[test]
    fn kth_nn_self_excludes_self_but_not_duplicates() {
        let dim = 2;
        let pts = [0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 6.0, 8.0];
        assert_eq!(kth_nn_self(&pts, dim, 1).unwrap(), vec![0.0, 5.0, 0.0, 5.0]);
        assert_eq!(kth_nn_self(&pts, dim, 2).unwrap(), vec![5.0, 5.0, 5.0, 10.0]);
        let rnd = random(500, 5, 9);
        let got = kth_nn_self(&rnd, 5, 3).unwrap();
        let want = brute(&rnd, &rnd, 5, 4); // includes self at rank 0 (random data has no duplicates)
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w[3].1).abs() <= 1e-6);
        }
    }

    #[test]
    fn within_any_ball_matches_brute_force() {
        let dim = 6;
        let (q, c) = (random(700, dim, 10), random(2500, dim, 11));
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let radii: Vec<f32> = (0..2500).map(|_| rng.random::<f32>() * 0.3).collect();
        let got = within_any_ball(&q, &c, &radii, dim).unwrap();
        let want: Vec<bool> =
            q.chunks(dim).map(|x| c.chunks(dim).zip(&radii).any(|(y, &r)| to_dist(exact_sq_dist(x, y)) <= r)).collect();
        assert_eq!(got, want);
        assert!(want.iter().any(|&b| b) && want.iter().any(|&b| !b));
        // A ball of radius exactly the distance contains its boundary point.
        assert_eq!(within_any_ball(&[3.0, 4.0], &[0.0, 0.0], &[5.0], 2).unwrap(), vec![true]);
    }

    #[test]
    fn bad_input_errors_clearly() {
        let r = random(4, 3, 13);
        let msg = nearest(&r[..3], &r, 3, 5).unwrap_err().to_string();
        assert!(msg.contains("k = 5 exceeds the number of reference points (4)"), "{msg}");
        assert!(nearest(&r[..3], &r, 3, 0).is_err());
        assert!(nearest(&r[..4], &r, 3, 1).unwrap_err().to_string().contains("not a multiple"));
        assert!(nearest(&[f32::NAN, 0.0, 0.0], &r, 3, 1).unwrap_err().to_string().contains("non-finite"));
        assert!(nearest(&r, &r, 0, 1).is_err());
        assert!(kth_nn_self(&r, 3, 4).is_err());
        assert!(within_any_ball(&r, &r, &[1.0], 3).is_err());
        assert!(within_any_ball(&r, &r, &[1.0, -1.0, 0.0, 0.0], 3).is_err());
        assert!(nearest(&[], &r, 3, 1).unwrap().is_empty());
    }
}
