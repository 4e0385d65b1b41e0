//! The one place that calls the `gemm` crate (the f32 gemm Flex itself uses): bounds-checked
//! strided views around its raw-pointer interface.

/// A matrix view: element (i, j) at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

pub fn view(data: &[f32], rs: usize, cs: usize) -> View<'_> {
    View { data, rs, cs }
}

/// Threads for one gemm: `Seq` inside tasks that are already parallel, `Pool` for a lone large
/// product (gemm splits the output over the pool; every output element is still reduced by one
/// thread in the same k-blocks, so the result does not depend on the thread count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    Seq,
    Pool,
}

/// dst[m×n] = lhs[m×k]·rhs[k×n] (or += with `acc`); dst is row-major with row stride `d_rs`.
/// Extents are checked before the raw-pointer call.
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], d_rs: usize, acc: bool, lhs: View, rhs: View, par: Par) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, d_rs, 1) < dst.len(), "gemm dst out of bounds");
    if k == 0 {
        if !acc {
            for row in dst.chunks_mut(d_rs).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    assert!(last(m, k, lhs.rs, lhs.cs) < lhs.data.len(), "gemm lhs out of bounds");
    assert!(last(k, n, rhs.rs, rhs.cs) < rhs.data.len(), "gemm rhs out of bounds");
    let parallelism = match par {
        Par::Seq => gemm::Parallelism::None,
        Par::Pool => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: every index the gemm touches, (i·rs + j·cs) for i < rows and j < cols, was checked
    // above to lie inside its slice; dst is exclusively borrowed and does not alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            d_rs as isize,
            acc,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled gemm gives the same bits with 1 and 3 threads, and matches a plain triple loop.
    #[test]
    fn pooled_gemm_is_thread_count_invariant_and_correct() {
        let (m, n, k) = (257, 391, 523);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 2001) as f32 / 1000.0 - 1.0).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![0.0f32; m * n];
            pool.install(|| matmul(m, n, k, &mut c, n, false, view(&a, k, 1), view(&b, n, 1), Par::Pool));
            c
        };
        let (one, three) = (run(1), run(3));
        assert_eq!(one, three);
        for i in (0..m).step_by(37) {
            for j in (0..n).step_by(41) {
                let want: f64 = (0..k).map(|t| a[i * k + t] as f64 * b[t * n + j] as f64).sum();
                assert!((one[i * n + j] as f64 - want).abs() < 1e-3, "({i}, {j})");
            }
        }
    }
}
