//! The machine's f32 peak, measured rather than looked up: every thread runs a loop of
//! independent fused multiply-adds in the widest vector unit this CPU has (chosen at run time, so
//! the same binary runs on any x86-64 CPU). It is the ceiling a perfect kernel could reach here,
//! the denominator of bench's "% of peak".

use std::time::{Duration, Instant};

/// Measured f32 throughput of `threads` threads running at once.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Peak {
    pub gflops: f64,
    /// Instruction set of the loop (e.g. "avx512f", "avx2+fma", "portable").
    pub isa: &'static str,
    pub threads: usize,
}

/// FLOPs of one call to a kernel: 16 accumulators × lanes × 2 (multiply + add) × iterations.
const ITERS: usize = 1 << 16;
const ACC: usize = 16;

/// The fastest kernel this CPU can run, as (name, function returning FLOPs done).
fn kernel() -> (&'static str, fn() -> f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return ("avx512f", || unsafe { x86::fma512() });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return ("avx2+fma", || unsafe { x86::fma256() });
        }
    }
    ("portable", portable)
}

fn portable() -> f64 {
    let mut acc = [[1.0f32; 8]; ACC];
    let (a, b) = (std::hint::black_box(0.999_99f32), std::hint::black_box(1e-7f32));
    for _ in 0..ITERS {
        for v in acc.iter_mut() {
            for x in v.iter_mut() {
                *x = x.mul_add(a, b);
            }
        }
    }
    std::hint::black_box(acc);
    (ITERS * ACC * 8 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ACC, ITERS};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma512() -> f64 {
        let a = _mm512_set1_ps(std::hint::black_box(0.999_99));
        let b = _mm512_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); ACC];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        std::hint::black_box(acc);
        (ITERS * ACC * 16 * 2) as f64
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma256() -> f64 {
        let a = _mm256_set1_ps(std::hint::black_box(0.999_99));
        let b = _mm256_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); ACC];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        std::hint::black_box(acc);
        (ITERS * ACC * 8 * 2) as f64
    }
}

/// Run the kernel on `threads` threads at once for about `dur` each; the best of three rounds.
pub fn measure(threads: usize, dur: Duration) -> Peak {
    let (isa, k) = kernel();
    let threads = threads.max(1);
    let round = || -> f64 {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        let t0 = Instant::now();
                        let mut flops = 0.0;
                        while t0.elapsed() < dur {
                            flops += k();
                        }
                        flops / t0.elapsed().as_secs_f64()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        })
    };
    let best = (0..3).map(|_| round()).fold(0.0, f64::max);
    Peak { gflops: best / 1e9, isa, threads }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_positive_and_scales_with_work() {
        let p = measure(1, Duration::from_millis(20));
        assert!(p.gflops > 0.1, "{p:?}");
        assert!(p.gflops < 1e4, "{p:?}");
        // the portable loop does the same arithmetic as the vector ones, only narrower
        let flops = portable();
        assert_eq!(flops, (ITERS * ACC * 16) as f64);
    }
}
