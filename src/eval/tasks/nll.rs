//! Likelihood: the IWAE bound on −log p(x) and the ELBO, where the model defines p(x|z) and
//! q(z|x) (VAE, CVAE); for the others, why it is not defined.

use super::{Measured, Timer};
use crate::data::{Binarize, Loader, Range, Splits};
use crate::eval::evaluate::EvalOptions;
use crate::eval::likelihood::{self, VaeLvm};
use crate::eval::report::NllProtocol;
use crate::models::{DecoderKind, Model, ModelKind};
use anyhow::Result;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// −IWAE_k, nats per image.
    pub iwae_nll: f64,
    pub elbo: f64,
    pub k: usize,
}

pub enum Nll {
    Measured(Measured<Bounds, NllProtocol>),
    /// The model has no likelihood; the note says why.
    Undefined(&'static str),
}

pub fn run(model: &Model, binarize: Binarize, data: &Splits, o: &EvalOptions, tm: &mut Timer) -> Result<Nll> {
    let Some(lvm) = VaeLvm::from_net(&model.spec, &model.net) else {
        return Ok(Nll::Undefined(match model.spec.kind {
            ModelKind::Ae | ModelKind::Aae => "not defined: a deterministic encoder/decoder has no likelihood model",
            _ => "not defined: a GAN has no likelihood (implicit density)",
        }));
    };
    tm.time("nll", || bounds(&lvm, model, data, binarize, o)).map(Nll::Measured)
}

fn bounds(
    lvm: &VaeLvm,
    model: &Model,
    data: &Splits,
    binarize: Binarize,
    o: &EvalOptions,
) -> Result<Measured<Bounds, NllProtocol>> {
    let n = o.iwae_n.unwrap_or(data.test.n).min(data.test.n);
    let test = data.test.head(n);
    // Binarised runs are scored on one fixed dynamic binarisation of the test set (the standard
    // protocol); grey-level runs on the grey test set.
    let bin = if binarize == Binarize::None { Binarize::None } else { Binarize::Dynamic };
    let batches = Loader::new(&test, 1000, bin, Range::Unit, 0).eval_batches(1000);
    let x: Vec<f32> = batches.iter().flat_map(|b| b.x.iter().copied()).collect();
    let labels: Vec<f32> = batches.iter().flat_map(|b| model.spec.cond_of_data(&test, &b.idx)).collect();
    let pb = crate::train::progress(n as u64, &format!("IWAE k={}", o.iwae_k), o.verbose);
    let t = Instant::now();
    let b =
        likelihood::bounds(lvm, &x, &labels, test.shape.len(), o.iwae_k, o.seed, &mut |d| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    let test_set = match bin {
        Binarize::None => {
            "grey-level test images in [0,1] (not binarised: not comparable with binarised-MNIST numbers)".to_string()
        }
        _ => "test images dynamically binarised once with the fixed seed 0x7E57".to_string(),
    };
    let decoder = match model.spec.decoder {
        DecoderKind::Bernoulli => "Bernoulli decoder: nats of the binary image",
        DecoderKind::Gaussian => "Gaussian decoder: density in nats, constant included",
    };
    Ok(Measured {
        values: Bounds { iwae_nll: b.iwae_nll(), elbo: b.elbo_mean(), k: o.iwae_k },
        protocol: NllProtocol {
            images: n,
            k: o.iwae_k,
            seed: o.seed,
            test_set,
            decoder: decoder.into(),
            bound: "IWAE_K = log-mean-exp of K importance weights (max subtracted, f64 accumulation); ELBO = mean \
                    log-weight of the same draws"
                .into(),
            seconds: t.elapsed().as_secs_f64(),
        },
    })
}
