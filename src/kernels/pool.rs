//! Max pooling with non-overlapping k×k windows (stride = kernel, no padding), in either memory
//! order; the forward pass records which tap won each output so the backward pass is a scatter.
//! Windows do not overlap, so every input receives at most one gradient: images run in parallel
//! with no ordering question.

use super::conv::Mem;
use rayon::prelude::*;

/// x [n, c, h, w] pooled by k×k windows: [n, c, h/k, w/k].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
}

impl PoolShape {
    pub fn out(&self) -> (usize, usize) {
        (self.h / self.kh, self.w / self.kw)
    }
    fn index(&self, mem: Mem, (b, ch, y, x): (usize, usize, usize, usize)) -> usize {
        match mem {
            Mem::Nchw => ((b * self.c + ch) * self.h + y) * self.w + x,
            Mem::Nhwc => ((b * self.h + y) * self.w + x) * self.c + ch,
        }
    }
    fn out_index(&self, mem: Mem, (b, ch, y, x): (usize, usize, usize, usize)) -> usize {
        let (oh, ow) = self.out();
        match mem {
            Mem::Nchw => ((b * self.c + ch) * oh + y) * ow + x,
            Mem::Nhwc => ((b * oh + y) * ow + x) * self.c + ch,
        }
    }
}

/// (pooled output in memory order `mem`, winning tap per output, same order).
pub fn forward(s: PoolShape, mem: Mem, x: &[f32]) -> (Vec<f32>, Vec<u8>) {
    assert_eq!(x.len(), s.n * s.c * s.h * s.w, "pool input size");
    assert!(s.kh * s.kw <= 256 && s.kh > 0 && s.kw > 0, "pool window");
    let (oh, ow) = s.out();
    let per = s.c * oh * ow;
    let mut y = vec![0.0f32; s.n * per];
    let mut arg = vec![0u8; s.n * per];
    y.par_chunks_mut(per.max(1)).zip(arg.par_chunks_mut(per.max(1))).enumerate().for_each(|(b, (yb, ab))| {
        for ch in 0..s.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0u8);
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            let v = x[s.index(mem, (b, ch, oy * s.kh + ky, ox * s.kw + kx))];
                            // The first maximum wins ties; a NaN wins and propagates.
                            if v > best || (v.is_nan() && !best.is_nan()) {
                                best = v;
                                at = (ky * s.kw + kx) as u8;
                            }
                        }
                    }
                    let o = s.out_index(mem, (0, ch, oy, ox));
                    yb[o] = best;
                    ab[o] = at;
                }
            }
        }
    });
    (y, arg)
}

/// dx from dy (both in memory order `mem`) and the winning taps.
pub fn backward(s: PoolShape, mem: Mem, arg: &[u8], dy: &[f32]) -> Vec<f32> {
    let (oh, ow) = s.out();
    let (per_in, per_out) = (s.c * s.h * s.w, s.c * oh * ow);
    assert_eq!(dy.len(), s.n * per_out, "pool output-gradient size");
    let mut dx = vec![0.0f32; s.n * per_in];
    dx.par_chunks_mut(per_in.max(1)).enumerate().for_each(|(b, dxb)| {
        for ch in 0..s.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = s.out_index(mem, (b, ch, oy, ox));
                    let t = arg[o] as usize;
                    let i = s.index(mem, (0, ch, oy * s.kh + t / s.kw, ox * s.kw + t % s.kw));
                    dxb[i] = dy[o];
                }
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_and_routes_gradients_to_the_winner_in_both_orders() {
        let s = PoolShape { n: 2, c: 3, h: 5, w: 4, kh: 2, kw: 2 };
        let x: Vec<f32> = (0..2 * 3 * 5 * 4).map(|i| ((i * 37) % 23) as f32).collect();
        let (y, arg) = forward(s, Mem::Nchw, &x);
        // Odd height: the last row is dropped (floor), as burn and PyTorch do.
        assert_eq!(y.len(), 2 * 3 * 2 * 2);
        for b in 0..2 {
            for ch in 0..3 {
                for oy in 0..2 {
                    for ox in 0..2 {
                        let win: Vec<f32> =
                            (0..4).map(|t| x[((b * 3 + ch) * 5 + oy * 2 + t / 2) * 4 + ox * 2 + t % 2]).collect();
                        let want = win.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        assert_eq!(y[((b * 3 + ch) * 2 + oy) * 2 + ox], want);
                    }
                }
            }
        }
        let dy: Vec<f32> = (0..y.len()).map(|i| i as f32 + 1.0).collect();
        let dx = backward(s, Mem::Nchw, &arg, &dy);
        assert_eq!(dx.iter().sum::<f32>(), dy.iter().sum::<f32>());
        assert_eq!(dx.iter().filter(|&&v| v != 0.0).count(), dy.len());
        // The same pooling on NHWC storage gives the same values, transposed.
        let mut xt = vec![0.0; x.len()];
        crate::kernels::conv::nchw_to_nhwc(&x, 2, 3, 20, &mut xt);
        let (yt, argt) = forward(s, Mem::Nhwc, &xt);
        let mut back = vec![0.0; yt.len()];
        crate::kernels::conv::nhwc_to_nchw(&yt, 2, 3, 4, &mut back);
        assert_eq!(back, y);
        let mut dyt = vec![0.0; dy.len()];
        crate::kernels::conv::nchw_to_nhwc(&dy, 2, 3, 4, &mut dyt);
        let dxt = backward(s, Mem::Nhwc, &argt, &dyt);
        let mut dxb = vec![0.0; dxt.len()];
        crate::kernels::conv::nhwc_to_nchw(&dxt, 2, 3, 20, &mut dxb);
        assert_eq!(dxb, dx);
    }
}
