//! Latent walks: strips of images decoded along paths between random prior codes — linear
//! interpolation, or spherical (slerp), which keeps Gaussian codes at a typical norm.

/// `steps` codes from `a` to `b` inclusive; the ends are exactly `a` and `b`.
pub fn interpolate(a: &[f32], b: &[f32], steps: usize, slerp: bool) -> Vec<Vec<f32>> {
    let steps = steps.max(2);
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let omega = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0).acos();
    (0..steps)
        .map(|i| {
            if i == 0 {
                return a.to_vec();
            }
            if i == steps - 1 {
                return b.to_vec();
            }
            let t = i as f64 / (steps - 1) as f64;
            // Slerp degenerates to lerp for (nearly) parallel codes.
            let (wa, wb) = if slerp && omega.sin().abs() > 1e-6 {
                (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin())
            } else {
                (1.0 - t, t)
            };
            a.iter().zip(b).map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_exact_and_slerp_keeps_the_norm() {
        let a = [1.0f32, 0.0, 0.0];
        let b = [0.0f32, 2.0, 0.0];
        for slerp in [false, true] {
            let p = interpolate(&a, &b, 5, slerp);
            assert_eq!((p.len(), p[0].as_slice(), p[4].as_slice()), (5, &a[..], &b[..]));
        }
        let unit_b = [0.0f32, 1.0, 0.0];
        let mid = &interpolate(&a, &unit_b, 3, true)[1];
        let n = mid.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-6, "slerp between unit vectors left the sphere: {n}");
        let lin = &interpolate(&a, &unit_b, 3, false)[1];
        assert!((lin[0] - 0.5).abs() < 1e-7 && (lin[1] - 0.5).abs() < 1e-7);
    }
}
