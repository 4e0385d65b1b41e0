//! Run-time choice of the vector unit for our element-wise kernels, and vectorisable `exp`/`ln`.
//!
//! The kernels are plain Rust loops without calls into libm, written so that LLVM vectorises them.
//! `multiversion!` compiles one body three times — AVX-512, AVX2+FMA, and the x86-64 baseline — and
//! picks one at run time, so the binary still runs on any x86-64 CPU (like gemm's own dispatch).
//! Reductions keep explicit lane accumulators of a fixed width (`LANES`), so their rounding does
//! not depend on which body runs or on the thread count.

use std::sync::OnceLock;

/// Width of the explicit accumulators in reductions (one AVX-512 register of f32).
pub const LANES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

/// The widest vector unit this CPU has (detected once).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    })
}

/// `multiversion! { pub fn name(args) -> R { body } }` defines `name`, which runs `body`
/// compiled for the widest vector unit present. The body must be safe code.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                match $crate::kernels::simd::isa() {
                    // SAFETY: `isa()` reported these features present on this CPU.
                    $crate::kernels::simd::Isa::Avx512 => return unsafe { v4($($arg),*) },
                    $crate::kernels::simd::Isa::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::kernels::simd::Isa::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// eˣ for f32 without libm (Cephes `expf`: range reduction by ln 2, degree-6 polynomial, exponent
/// bits set directly); within 2 ulp of the true value, 0 below −87.3 (no subnormals), +∞ above 88.7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.336_55, 88.722_83);
    let n = (xc * LOG2E).round();
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e = p * r * r + r + 1.0;
    // 2ⁿ by exponent bits; n ∈ [−126, 128] after the clamp, and 2¹²⁸ is not a normal f32, so
    // that case is 2¹²⁷·2.
    let scale = f32::from_bits((((n as i32).min(127) + 127) as u32) << 23);
    let y = e * scale * if n > 127.0 { 2.0 } else { 1.0 };
    if x > 88.722_83 {
        f32::INFINITY
    } else if x < -87.336_55 {
        0.0
    } else {
        y
    }
}

/// ln(x) for finite x > 0 without libm (Cephes `logf`: mantissa in [√½, √2), degree-8 polynomial).
#[inline(always)]
fn ln_pos(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [0.5, 1)
    if m < std::f32::consts::FRAC_1_SQRT_2 {
        m += m;
        e -= 1;
    }
    let t = m - 1.0;
    let z = t * t;
    let p = 7.037_683_6e-2_f32;
    let p = p * t - 1.151_461e-1;
    let p = p * t + 1.167_699_9e-1;
    let p = p * t - 1.242_014_1e-1;
    let p = p * t + 1.424_932_3e-1;
    let p = p * t - 1.666_805_8e-1;
    let p = p * t + 2.000_071_5e-1;
    let p = p * t - 2.499_999_4e-1;
    let p = p * t + 3.333_333e-1;
    let ef = e as f32;
    let y = p * t * z - 2.121_944_4e-4 * ef - 0.5 * z;
    t + y + 0.693_359_4 * ef
}

/// ln(1 + u) for u ∈ [0, 1], accurate also for tiny u (the rounding of 1 + u is corrected).
#[inline(always)]
pub fn ln_1p_unit(u: f32) -> f32 {
    let w = 1.0 + u;
    // ln(w) + (u − (w − 1))/w: the second term is the first-order correction for rounding w.
    ln_pos(w) + (u - (w - 1.0)) / w
}

/// softplus(x) = ln(1 + eˣ), stable for every x: max(x, 0) + ln(1 + e^−|x|).
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + ln_1p_unit(exp(-x.abs()))
}

/// The logistic σ(x) = 1/(1 + e^−x), never forming e^x for large positive x.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// tanh(x): for |x| < 0.625 Cephes' odd polynomial, above it sign(x)·(1 − e^−2|x|)/(1 + e^−2|x|),
/// where e^−2|x| < 0.29 leaves no cancellation.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    let s = x * x;
    let p = -5.704_988_7e-3_f32;
    let p = p * s + 0.020_639_088;
    let p = p * s - 5.373_971_6e-2;
    let p = p * s + 0.133_314_42;
    let p = p * s - 0.333_332_8;
    let small = p * s * x + x;
    if a < 0.625 { small } else { t.copysign(x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    fn rel(a: f32, b: f64) -> f64 {
        ((a as f64) - b).abs() / b.abs().max(1e-30)
    }

    #[test]
    fn exp_within_a_few_ulp_of_f64() {
        for x in grid(-87.0, 88.0, 200_000) {
            let want = (x as f64).exp();
            assert!(rel(exp(x), want) < 4e-7, "exp({x}) = {} want {want}", exp(x));
        }
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(200.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_1p_unit_accurate_down_to_tiny_arguments() {
        for u in grid(0.0, 1.0, 100_000).chain([1e-30, 1e-12, 1e-8, 3e-8, 1e-7, 1e-5]) {
            let want = (u as f64).ln_1p();
            let got = ln_1p_unit(u);
            assert!((got as f64 - want).abs() <= 3e-7 * want.max(1e-38), "ln1p({u}) = {got} want {want}");
        }
    }

    #[test]
    fn softplus_sigmoid_tanh_match_f64() {
        for x in grid(-60.0, 60.0, 240_001).chain([-1e-6, 1e-6, 0.0, 0.06, 0.0626, 0.6249, 0.625]) {
            let x64 = x as f64;
            let sp = if x64 > 0.0 { x64 + (-x64).exp().ln_1p() } else { x64.exp().ln_1p() };
            assert!((softplus(x) as f64 - sp).abs() <= 4e-7 * sp.max(1e-30), "softplus({x})");
            let sg = 1.0 / (1.0 + (-x64).exp());
            assert!(rel(sigmoid(x), sg) < 5e-7, "sigmoid({x}) = {} want {sg}", sigmoid(x));
            let th = x64.tanh();
            assert!((tanh(x) as f64 - th).abs() <= 4e-7 * th.abs().max(1e-30), "tanh({x}) = {} want {th}", tanh(x));
        }
    }

    multiversion! {
        fn sum_sq(v: &[f32]) -> f32 {
            v.iter().map(|x| x * x).sum()
        }
    }

    #[test]
    fn multiversion_dispatch_runs() {
        assert_eq!(sum_sq(&[1.0, 2.0, 3.0]), 14.0);
    }
}
