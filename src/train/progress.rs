//! What a person watching training sees: progress bars, loss means, the per-epoch test evaluation.

use crate::data::Batch;
use crate::models::Model;
use crate::models::blocks::matrix;
use crate::models::prior::sample_prior;
use crate::run::checkpoint::Sums;
use crate::util::{Stream, rng};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::io::IsTerminal;

pub(super) fn progress_bar(len: u64, epoch: u64, epochs: u64, visible: bool) -> ProgressBar {
    progress(len, &format!("epoch {epoch}/{epochs}"), visible)
}

/// A progress bar on stderr (hidden when `visible` is false or stderr is not a terminal).
pub fn progress(len: u64, prefix: &str, visible: bool) -> ProgressBar {
    let visible = visible && std::io::stderr().is_terminal();
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

pub(super) fn means(acc: &Sums) -> Value {
    Value::Object(acc.iter().map(|(k, (s, n))| (k.to_string(), json!(s / (*n).max(1) as f64))).collect())
}

pub(super) fn fmt_losses(v: &Value) -> String {
    let o = v.as_object().cloned().unwrap_or_default();
    let main = o.get("loss").and_then(Value::as_f64).unwrap_or(f64::NAN);
    let rest: Vec<String> = o
        .iter()
        .filter(|(k, _)| *k != "loss")
        .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(f64::NAN)))
        .collect();
    if rest.is_empty() { format!("{main:.2}") } else { format!("{main:.2} ({})", rest.join(", ")) }
}

/// Mean losses over evaluation batches (per image), with fixed noise: a GAN's codes, drawn from
/// its prior, or a VAE's reparameterisation noise (its prior is always N(0, I)).
pub fn evaluate(model: &Model, data: &crate::data::Dataset, batches: &[Batch]) -> Value {
    let mut acc = Sums::new();
    let (l, k) = (model.spec.latent_dim, model.spec.objective.draws());
    for (i, b) in batches.iter().enumerate() {
        let x = matrix(b.x.clone(), b.n, model.spec.shape.len(), &model.device);
        let noise = sample_prior(model.spec.prior, b.n * k, l, &mut rng(0x7E57, Stream::Eval, i as u64));
        let eps = matrix(noise, b.n * k, l, &model.device);
        for (k, v) in model.net.losses(&model.spec, x, &model.spec.cond_of_data(data, &b.idx), eps).values() {
            let e = acc.entry(k.to_string()).or_default();
            e.0 += v * b.n as f64;
            e.1 += b.n as u64;
        }
    }
    means(&acc)
}
