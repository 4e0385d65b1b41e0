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
