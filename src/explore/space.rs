//! The latent map the page draws: a plane through the latent space, the directions its sliders
//! move along, and the test codes projected onto the plane. The same choices as `latent-map`'s
//! pictures: the latent axes for a 2-d latent, else the codes' principal directions; a GAN, with
//! no encoder, gets the plane through one prior draw along its first latent axes.

use super::api::short;
use super::http::{ApiError, ApiResult};
use super::runs::Loaded;
use crate::models::Prior;
use crate::models::prior::{MIXTURE_COMPONENTS, MIXTURE_RADIUS, MIXTURE_STD};
use serde_json::{Value, json};

/// Slider directions at most.
const DIRECTIONS: usize = 8;

pub fn compute(l: &Loaded, n: usize) -> ApiResult<Value> {
    let model = &l.run.model;
    let spec = &model.spec;
    let d = spec.latent_dim;
    let k = DIRECTIONS.min(d).max(2);
    let axis = |i: usize| -> Vec<f32> { (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect() };

    if !spec.kind.has_encoder() {
        let mut center = l.run.prior_sheet(1, 0);
        // The mixture's components lie on a circle in z1, z2: centred on the circle's middle, the
        // plane crosses all ten of them (and the gaps between, where G has no training codes).
        let (prior, r) = if spec.prior == Prior::Mixture {
            center.iter_mut().take(2).for_each(|c| *c = 0.0);
            let what = format!(
                "The prior is a mixture of {MIXTURE_COMPONENTS} Gaussians (σ {MIXTURE_STD}) on a circle of radius {MIXTURE_RADIUS} in \
                 z1, z2, N(0, 1) on the other axes; the plane is centred on the circle, so it crosses every component."
            );
            (what, MIXTURE_RADIUS + 2.0 * MIXTURE_STD)
        } else {
            ("The prior is N(0, I): ±3 along an axis holds 99.7% of its draws.".to_string(), 3.0f32)
        };
        let note = format!(
            "A {} has no encoder, so there are no test codes to plot: this is the plane through one prior \
             draw (sample --seed 0, image 0) along the latent axes z1 and z2 of its {d}-d latent; the \
             sliders move z1…z{k}. {prior}",
            spec.kind.name(),
        );
        return Ok(json!({
            "basis": "prior", "note": note, "latent_dim": d, "center": short(&center),
            "directions": (0..k).map(|i| short(&axis(i))).collect::<Vec<_>>(), "spread": vec![1.0f32; k],
            "extent": {"u": [-r, r], "v": [-r, r]},
            "points": {"u": [], "v": [], "label": [], "index": []}, "class_means": Value::Null,
        }));
    }

    let test = l.test()?;
    let head = test.head(n);
    let codes = model.encode_dataset(&head).map_err(|e| ApiError::bad(format!("{e:#}")))?;
    let labels = head.labels.clone().unwrap_or_default();
    let what = if spec.kind.has_posterior() { "posterior-mean codes" } else { "codes" };
    let (basis, center, directions, note): (&str, Vec<f32>, Vec<Vec<f32>>, String) = if d <= 2 {
        (
            "latent",
            vec![0.0; d],
            (0..2).map(|i| if i < d { axis(i) } else { vec![0.0; d] }).collect(),
            format!("The {what} of {} test images in the model's own {d}-d latent space.", head.n),
        )
    } else {
        let (mean, top) = crate::viz::latent::pca(&codes, d, k);
        let explained: f64 = top.iter().take(2).map(|(v, _)| v).sum::<f64>();
        let total: f64 = variance_total(&codes, d, &mean);
        (
            "pca",
            mean.iter().map(|&m| m as f32).collect(),
            top.into_iter().map(|(_, v)| v.into_iter().map(|x| x as f32).collect()).collect(),
            format!(
                "The latent is {d}-d: this is the plane of the two main principal directions (PC1, PC2) of the \
                 {what} of {} test images, through their mean; it holds {:.0}% of their variance. Sliders move \
                 along PC1…PC{k}.",
                head.n,
                100.0 * explained / total.max(1e-12)
            ),
        )
    };
    let project =
        |code: &[f32], dir: &[f32]| -> f32 { code.iter().zip(&center).zip(dir).map(|((x, c), e)| (x - c) * e).sum() };
    let coords: Vec<Vec<f32>> =
        directions.iter().map(|dir| codes.chunks(d).map(|c| project(c, dir)).collect()).collect();
    let spread: Vec<f32> = coords.iter().map(|v| crate::eval::stats::mean_std(v).1 as f32).collect();
    let variational_2d = spec.kind.is_variational() && d <= 2;
    let extent = |v: &[f32]| -> [f32; 2] {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        let q = |f: f32| s[((s.len() - 1) as f32 * f) as usize];
        let (lo, hi) = (q(0.005), q(0.995));
        let pad = 0.15 * (hi - lo).max(1e-3);
        // A 2-d VAE's prior is what sampling uses: show all of its ±3σ.
        if variational_2d { [(lo - pad).min(-3.0), (hi + pad).max(3.0)] } else { [lo - pad, hi + pad] }
    };
    let class_means = test.labels.as_ref().map(|_| {
        let classes = l.run.class_names.len().max(test.num_classes);
        (0..classes)
            .map(|c| {
                let rows: Vec<&[f32]> =
                    codes.chunks(d).zip(&labels).filter(|(_, l)| **l as usize == c).map(|(r, _)| r).collect();
                if rows.is_empty() {
                    return Value::Null;
                }
                json!(short(
                    &(0..d).map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32).collect::<Vec<_>>()
                ))
            })
            .collect::<Vec<_>>()
    });
    Ok(json!({
        "basis": basis, "note": note, "latent_dim": d, "center": short(&center),
        "directions": directions.iter().map(|v| short(v)).collect::<Vec<_>>(), "spread": short(&spread), "extent": {"u": short(&extent(&coords[0])), "v": short(&extent(&coords[1]))},
        "points": {
            "u": short(&coords[0]), "v": short(&coords[1]),
            "label": test.labels.as_ref().map(|_| labels.clone()),
            "index": (0..head.n).collect::<Vec<_>>(),
        },
        "class_means": class_means,
    }))
}

fn variance_total(codes: &[f32], d: usize, mean: &[f64]) -> f64 {
    let n = (codes.len() / d).max(1) as f64;
    codes.chunks(d).map(|r| r.iter().zip(mean).map(|(&x, m)| (x as f64 - m).powi(2)).sum::<f64>()).sum::<f64>() / n
}
