//! The pictures a run writes: fixed-noise sample grids and reconstructions per epoch, the final
//! grids, the progress GIF, loss curves and the discriminator's outputs.

use crate::config::RunConfig;
use crate::data::{Loader, Range, Splits};
use crate::models::Model;
use crate::run::RunDir;
use crate::util::{Stream, rng};
use crate::viz;
use anyhow::Result;
use serde_json::Value;

/// Fixed codes for the per-epoch sample grid, with their condition rows: class
/// models get one row per class; attribute models eight rows of real attribute combinations, the
/// same eight codes in each row (so a column is one code under eight conditions).
pub fn fixed_grid_codes(model: &Model, seed: u64) -> (Vec<f32>, Vec<f32>, usize) {
    let spec = &model.spec;
    let k = spec.num_classes;
    if spec.has_classes() {
        let n = k * 8;
        let z = model.prior(n, &mut rng(seed, Stream::FixedNoise, 0));
        let labels: Vec<u8> = (0..n).map(|i| (i / 8) as u8).collect();
        (z, spec.class_rows_of(&labels), 8)
    } else if spec.is_conditioned() {
        let z = model.prior(8, &mut rng(seed, Stream::FixedNoise, 0)).repeat(8);
        let rows = spec.cond_default(8);
        let d = spec.cond_dim();
        let cond = (0..64).flat_map(|i| rows[(i / 8) * d..(i / 8 + 1) * d].to_vec()).collect();
        (z, cond, 8)
    } else {
        (model.prior(64, &mut rng(seed, Stream::FixedNoise, 0)), vec![], 8)
    }
}

/// The epoch's sample grid (`samples/epoch-NNN.png`, whose PNG bytes are returned) and, for models
/// with an encoder, its reconstructions.
pub(super) fn epoch_pictures(
    dir: &RunDir,
    cfg: &RunConfig,
    model: &Model,
    data: &Splits,
    epoch: u64,
) -> Result<Vec<u8>> {
    let (z, cond, ncol) = fixed_grid_codes(model, cfg.seed);
    let imgs = model.decode_host(&z, &cond);
    let png = viz::grid::png_bytes(&viz::grid::grid_image(&imgs, model.spec.shape, ncol))?;
    crate::util::write_atomic(&dir.samples().join(format!("epoch-{epoch:03}.png")), &png)?;
    if model.spec.kind.decl().text {
        let low = stage_one(model, &z, &cond);
        viz::grid::save_grid(&low, model.spec.shape, ncol, &dir.samples().join(format!("stage1-{epoch:03}.png")))?;
    }
    if model.spec.kind.has_encoder() {
        recon_grid(model, data, &dir.samples().join(format!("recon-{epoch:03}.png")))?;
    }
    Ok(png)
}

/// A StackGAN's stage I pictures (upsampled) for codes and their captions' bags of words.
fn stage_one(model: &Model, z: &[f32], cond: &[f32]) -> Vec<f32> {
    model.decode_bow_host(z, cond, crate::models::stackgan::Stage::One)
}

/// Originals (top two rows) above their reconstructions (bottom two rows).
pub fn recon_grid(model: &Model, data: &Splits, path: &std::path::Path) -> Result<()> {
    let head = data.test.head(16);
    let loader = Loader::new(&head, 16, crate::data::Binarize::None, Range::Unit, 0);
    let b = &loader.eval_batches(16)[0];
    let cond = model.spec.cond_of_data(&head, &b.idx);
    let z = model.encode_host(&b.x, &cond)?;
    let rec = model.decode_host(&z, &cond);
    let mut both = b.x.clone();
    both.extend(rec);
    viz::grid::save_grid(&both, model.spec.shape, 8, path)
}

pub(super) fn final_pictures(dir: &RunDir, cfg: &RunConfig, model: &Model, data: &Splits) -> Result<()> {
    let fin = dir.final_dir();
    let (z, cond, ncol) = fixed_grid_codes(model, cfg.seed);
    viz::grid::save_grid(&model.decode_host(&z, &cond), model.spec.shape, ncol, &fin.join("samples.png"))?;
    if model.spec.kind.decl().text {
        viz::grid::save_grid(&stage_one(model, &z, &cond), model.spec.shape, ncol, &fin.join("samples-stage1.png"))?;
        // Captions × samples: the same 8 codes in every row.
        let t = model.text()?;
        let rows = t.showcase();
        let z8 = model.prior(8, &mut rng(cfg.seed, Stream::FixedNoise, 1)).repeat(rows.len());
        let tokens: Vec<Vec<u32>> = rows.iter().flat_map(|c| std::iter::repeat_n(t.tokens_lossy(c), 8)).collect();
        let imgs = model.decode_tokens_host(&z8, &tokens, crate::models::stackgan::Stage::Two);
        viz::grid::save_grid(&imgs, model.spec.shape, 8, &fin.join("captions.png"))?;
        crate::util::write_atomic(&fin.join("captions.txt"), (rows.join("\n") + "\n").as_bytes())?;
    }
    if model.spec.kind.has_encoder() {
        recon_grid(model, data, &fin.join("reconstructions.png"))?;
    }
    loss_curves(dir)?;
    let mut frames: Vec<_> = std::fs::read_dir(dir.samples())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("epoch-")))
        .collect();
    frames.sort();
    if !frames.is_empty() {
        viz::gif::gif_from_pngs(&frames, &dir.samples().join("progress.gif"), 500)?;
    }
    Ok(())
}

/// `final/loss.png`: one panel per loss term, train (logged steps) and test (epoch ends) vs step.
pub fn loss_curves(dir: &RunDir) -> Result<()> {
    use viz::plot::Series;
    if !dir.metrics().exists() {
        return Ok(()); // nothing logged yet (a run shorter than --log-every steps)
    }
    let lines = super::log::read(&dir.metrics())?;
    let mut terms: Vec<String> = Vec::new();
    for l in &lines {
        for part in ["train", "test"] {
            if let Some(o) = l.get(part).and_then(Value::as_object) {
                for k in o.keys() {
                    if !terms.contains(k) {
                        terms.push(k.clone());
                    }
                }
            }
        }
    }
    // The total first, then its terms.
    terms.sort_by_key(|t| (t != "loss", t.clone()));
    let pick = |kind: &str, part: &str, term: &str| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter(|l| l["kind"] == kind)
            .filter_map(|l| Some((l["step"].as_f64()?, l[part][term].as_f64()?)))
            .collect()
    };
    let panels: Vec<(String, String, Vec<Series>)> = terms
        .iter()
        .map(|t| {
            let mut s = vec![Series { name: "train".into(), points: pick("step", "train", t) }];
            let test = pick("epoch", "test", t);
            if !test.is_empty() {
                s.push(Series { name: "test".into(), points: test });
            }
            let unit = if t.starts_with("d_real") || t.starts_with("d_fake") {
                "mean D output"
            } else if t.contains("grad_norm") {
                "L2 norm"
            } else {
                "nats / image"
            };
            (t.clone(), unit.to_string(), s)
        })
        .filter(|(_, _, s)| s.iter().any(|s| !s.points.is_empty()))
        .collect();
    if panels.is_empty() {
        return Ok(());
    }
    viz::plot::line_panels(&dir.final_dir().join("loss.png"), "step", &panels)?;
    // The adversarial game at a glance: D(x) and D(G(z)) should both approach 1/2.
    let (dr, df) = (pick("step", "train", "d_real"), pick("step", "train", "d_fake"));
    if !dr.is_empty() {
        let half = vec![(dr[0].0, 0.5), (dr[dr.len() - 1].0, 0.5)];
        let s = vec![
            Series { name: "D(x)".into(), points: dr },
            Series { name: "D(G(z))".into(), points: df },
            Series { name: "1/2".into(), points: half },
        ];
        viz::plot::line_chart(&dir.final_dir().join("d_outputs.png"), "Discriminator outputs", "step", "mean D", &s)?;
    }
    Ok(())
}
