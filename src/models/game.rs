//! The losses of the generator/discriminator game, one value per GAN variant (see
//! `registry::ModelDecl::game`). Everything is in D's raw outputs: for the BCE game these are
//! logits, and BCE with logits is softplus(−l) for target 1 and softplus(l) for target 0, never
//! log(sigmoid(·)).

use super::blocks::softplus;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// The losses of the generator/discriminator game.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GameLoss {
    /// BCE with logits for D; G minimises the non-saturating −log D(G(z)) (Goodfellow et al. 2014).
    /// D's reported outputs are sigmoid(logit), ½ at the optimum.
    NonSaturating,
    /// Least squares (Mao et al. 2017, a = 0, b = c = 1): D minimises ½(D(x) − 1)² + ½D(G(z))²,
    /// G minimises ½(D(G(z)) − 1)². The optimal D is p_data/(p_data + p_g), so D's raw output
    /// (reported as is) is also ½ at the optimum.
    LeastSquares,
}

/// BCE-with-logits against a constant target `t`, batch mean.
pub fn bce_logits(logits: Tensor<2>, t: f64) -> Tensor<1> {
    if t == 0.0 {
        return softplus(logits).mean();
    }
    let pos = softplus(logits.clone().neg()).mean();
    if t == 1.0 { pos } else { pos * t + softplus(logits).mean() * (1.0 - t) }
}

/// ½·mean((out − t)²).
fn half_square(out: Tensor<2>, t: f64) -> Tensor<1> {
    out.sub_scalar(t).powi_scalar(2).mean().mul_scalar(0.5)
}

impl GameLoss {
    /// D's loss on real outputs `real` (target `real_target`, below 1 with label smoothing) and on
    /// fake outputs `fake` (target 0).
    pub fn d_loss(self, real: Tensor<2>, fake: Tensor<2>, real_target: f64) -> Tensor<1> {
        match self {
            GameLoss::NonSaturating => bce_logits(real, real_target) + bce_logits(fake, 0.0),
            GameLoss::LeastSquares => half_square(real, real_target) + half_square(fake, 0.0),
        }
    }

    /// G's loss on D's outputs for its images.
    pub fn g_loss(self, fake: Tensor<2>) -> Tensor<1> {
        match self {
            GameLoss::NonSaturating => bce_logits(fake, 1.0),
            GameLoss::LeastSquares => half_square(fake, 1.0),
        }
    }

    /// Mean of D's outputs as reported (d_real, d_fake): ½ at the game's optimum for both losses.
    pub fn mean_output(self, out: Tensor<2>) -> Tensor<1> {
        match self {
            GameLoss::NonSaturating => sigmoid(out).mean(),
            GameLoss::LeastSquares => out.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::blocks::to_vec;

    fn t(v: &[f32]) -> Tensor<2> {
        Tensor::<1>::from_floats(v, &Device::flex()).reshape([v.len(), 1])
    }

    #[test]
    fn losses_match_their_formulas_computed_by_hand() {
        let (real, fake) = ([0.9f32, 0.4], [0.2f32, -0.3]);
        let ls = GameLoss::LeastSquares;
        let d = to_vec(ls.d_loss(t(&real), t(&fake), 0.9))[0];
        let want = 0.5 * ((0.0f32).powi(2) + (-0.5f32).powi(2)) / 2.0 + 0.5 * (0.04 + 0.09) / 2.0;
        assert!((d - want).abs() < 1e-6, "{d} vs {want}");
        let g = to_vec(ls.g_loss(t(&fake)))[0];
        assert!((g - 0.5 * (0.64 + 1.69) / 2.0).abs() < 1e-6, "{g}");
        let sp = |x: f32| (1.0 + x.exp()).ln();
        let ns = GameLoss::NonSaturating;
        let d = to_vec(ns.d_loss(t(&real), t(&fake), 1.0))[0];
        let want = (sp(-0.9) + sp(-0.4)) / 2.0 + (sp(0.2) + sp(-0.3)) / 2.0;
        assert!((d - want).abs() < 1e-6, "{d} vs {want}");
        let g = to_vec(ns.g_loss(t(&fake)))[0];
        assert!((g - (sp(-0.2) + sp(0.3)) / 2.0).abs() < 1e-6, "{g}");
        // Reported outputs: sigmoid for logits, raw for least squares.
        assert!((to_vec(ns.mean_output(t(&[0.0])))[0] - 0.5).abs() < 1e-7);
        assert!((to_vec(ls.mean_output(t(&[0.25, 0.75])))[0] - 0.5).abs() < 1e-7);
    }
}
