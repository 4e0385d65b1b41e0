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
/// compiled for the widest vector unit present. The body must be safe code. Inside it, `M` is
/// the multiply-add to use (`Fused` where the CPU has FMA, `Plain` otherwise): pass it to the
/// math functions below, e.g. `simd::exp::<M>(x)`.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(unused_variables, dead_code, clippy::extra_unused_type_parameters)]
            fn body<M: $crate::kernels::simd::Madd>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body::<$crate::kernels::simd::Fused>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body::<$crate::kernels::simd::Fused>($($arg),*) }
                match $crate::kernels::simd::isa() {
                    // SAFETY: `isa()` reported these features present on this CPU.
                    $crate::kernels::simd::Isa::Avx512 => return unsafe { v4($($arg),*) },
                    $crate::kernels::simd::Isa::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::kernels::simd::Isa::Baseline => {}
                }
            }
            body::<$crate::kernels::simd::Plain>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// a·b + c: one fused instruction where the CPU has FMA (`Fused`), two otherwise (`Plain`; a
/// software `fmaf` would be far slower than the rounding difference is worth).
pub trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

pub struct Fused;
pub struct Plain;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// eˣ for f32 without libm (Cephes `expf`: range reduction by ln 2, degree-6 polynomial, exponent
/// bits set directly); within 2 ulp of the true value, 0 below −87.3 (no subnormals), +∞ above 88.7.
#[inline(always)]
pub fn exp<M: Madd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.336_55, 88.722_83);
    let n = (xc * LOG2E).round_ties_even();
    let r = M::madd(-n, LN2_LO, M::madd(-n, LN2_HI, xc));
    let e = poly_exp::<M>(r);
    // 2ⁿ by exponent bits; n ∈ [−126, 128] after the clamp, and 2¹²⁸ is not a normal f32, so
    // that case is 2¹²⁷·2.
    // SAFETY: n = round(xc·log2 e) with xc clamped to [−87.34, 88.73] lies in [−126, 128].
    let ni: i32 = unsafe { n.to_int_unchecked() };
    let scale = f32::from_bits(((ni.min(127) + 127) as u32) << 23);
    let y = e * scale * if n > 127.0 { 2.0 } else { 1.0 };
    if x > 88.722_83 {
        f32::INFINITY
    } else if x < -87.336_55 {
        0.0
    } else {
        y
    }
}

/// e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2 (Cephes coefficients).
#[inline(always)]
fn poly_exp<M: Madd>(r: f32) -> f32 {
    let p = M::madd(1.987_569_1e-4, r, 1.398_199_9e-3);
    let p = M::madd(p, r, 8.333_452e-3);
    let p = M::madd(p, r, 4.166_579_6e-2);
    let p = M::madd(p, r, 1.666_666_5e-1);
    let p = M::madd(p, r, 5e-1);
    M::madd(p, r * r, r) + 1.0
}

/// ln(x) for finite x > 0 without libm (Cephes `logf`: mantissa in [√½, √2), degree-8 polynomial).
#[inline(always)]
fn ln_pos<M: Madd>(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [0.5, 1)
    if m < std::f32::consts::FRAC_1_SQRT_2 {
        m += m;
        e -= 1;
    }
    let t = m - 1.0;
    let z = t * t;
    let p = M::madd(7.037_683_6e-2, t, -1.151_461e-1);
    let p = M::madd(p, t, 1.167_699_9e-1);
    let p = M::madd(p, t, -1.242_014_1e-1);
    let p = M::madd(p, t, 1.424_932_3e-1);
    let p = M::madd(p, t, -1.666_805_8e-1);
    let p = M::madd(p, t, 2.000_071_5e-1);
    let p = M::madd(p, t, -2.499_999_4e-1);
    let p = M::madd(p, t, 3.333_333e-1);
    let ef = e as f32;
    let y = M::madd(p * t, z, M::madd(-2.121_944_4e-4, ef, -0.5 * z));
    M::madd(0.693_359_4, ef, t + y)
}

/// ln(1 + u) for u ∈ [0, 1], accurate also for tiny u (the rounding of 1 + u is corrected).
#[inline(always)]
pub fn ln_1p_unit<M: Madd>(u: f32) -> f32 {
    let w = 1.0 + u;
    // ln(w) + (u − (w − 1))/w: the second term corrects the rounding of w. It is below one ulp
    // of 1, so 1/w ≈ 1.5 − w/2 (within 12 % on [1, 2]) is exact enough and avoids a division.
    M::madd(u - (w - 1.0), M::madd(-0.5, w, 1.5), ln_pos::<M>(w))
}

/// eˣ for x ≤ 0 (`exp` without the overflow path): 0 below −87.3.
#[inline(always)]
fn exp_nonpos<M: Madd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let xc = x.max(-87.336_55);
    let n = (xc * LOG2E).round_ties_even();
    let r = M::madd(n, 2.121_944_4e-4, M::madd(-n, 0.693_359_4, xc));
    let e = poly_exp::<M>(r);
    // SAFETY: n = round(xc·log2 e) with xc ∈ [−87.34, 0] lies in [−126, 0], well inside i32
    // (the checked `as` conversion costs a compare-and-blend per vector).
    let ni: i32 = unsafe { n.to_int_unchecked() };
    let y = e * f32::from_bits(((ni + 127) as u32) << 23);
    if x < -87.336_55 { 0.0 } else { y }
}

/// softplus(x) = ln(1 + eˣ), stable for every x: max(x, 0) + ln(1 + e^−|x|).
#[inline(always)]
pub fn softplus<M: Madd>(x: f32) -> f32 {
    x.max(0.0) + ln_1p_unit::<M>(exp_nonpos::<M>(-x.abs()))
}

/// The logistic σ(x) = 1/(1 + e^−x), never forming e^x for large positive x.
#[inline(always)]
pub fn sigmoid<M: Madd>(x: f32) -> f32 {
    let e = exp_nonpos::<M>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// tanh(x): for |x| < 0.625 Cephes' odd polynomial, above it sign(x)·(1 − e^−2|x|)/(1 + e^−2|x|),
/// where e^−2|x| < 0.29 leaves no cancellation.
#[inline(always)]
pub fn tanh<M: Madd>(x: f32) -> f32 {
    let a = x.abs();
    let e = exp_nonpos::<M>(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    let s = x * x;
    let p = M::madd(-5.704_988_7e-3, s, 0.020_639_088);
    let p = M::madd(p, s, -5.373_971_6e-2);
    let p = M::madd(p, s, 0.133_314_42);
    let p = M::madd(p, s, -0.333_332_8);
    let small = M::madd(p * s, x, x);
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
            for got in [exp::<Plain>(x), exp::<Fused>(x)] {
                assert!(rel(got, want) < 4e-7, "exp({x}) = {got} want {want}");
            }
        }
        assert_eq!(exp::<Plain>(-200.0), 0.0);
        assert_eq!(exp::<Plain>(200.0), f32::INFINITY);
        assert_eq!(exp::<Plain>(0.0), 1.0);
    }

    #[test]
    fn exp_nonpos_agrees_with_exp() {
        for x in grid(-100.0, 0.0, 100_000) {
            assert_eq!(exp_nonpos::<Plain>(x), exp::<Plain>(x), "{x}");
            assert_eq!(exp_nonpos::<Fused>(x), exp::<Fused>(x), "{x}");
        }
    }

    #[test]
    fn ln_1p_unit_accurate_down_to_tiny_arguments() {
        for u in grid(0.0, 1.0, 100_000).chain([1e-30, 1e-12, 1e-8, 3e-8, 1e-7, 1e-5]) {
            let want = (u as f64).ln_1p();
            for got in [ln_1p_unit::<Plain>(u), ln_1p_unit::<Fused>(u)] {
                assert!((got as f64 - want).abs() <= 3e-7 * want.max(1e-38), "ln1p({u}) = {got} want {want}");
            }
        }
    }

    #[test]
    fn softplus_sigmoid_tanh_match_f64() {
        for x in grid(-60.0, 60.0, 240_001).chain([-1e-6, 1e-6, 0.0, 0.06, 0.0626, 0.6249, 0.625]) {
            let x64 = x as f64;
            let sp = if x64 > 0.0 { x64 + (-x64).exp().ln_1p() } else { x64.exp().ln_1p() };
            let sg = 1.0 / (1.0 + (-x64).exp());
            let th = x64.tanh();
            for (s, g, t) in [
                (softplus::<Plain>(x), sigmoid::<Plain>(x), tanh::<Plain>(x)),
                (softplus::<Fused>(x), sigmoid::<Fused>(x), tanh::<Fused>(x)),
            ] {
                assert!((s as f64 - sp).abs() <= 4e-7 * sp.max(1e-30), "softplus({x})");
                assert!(rel(g, sg) < 5e-7, "sigmoid({x}) = {g} want {sg}");
                assert!((t as f64 - th).abs() <= 4e-7 * th.abs().max(1e-30), "tanh({x}) = {t} want {th}");
            }
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
