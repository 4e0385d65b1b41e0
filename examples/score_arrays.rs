//! Score images from any source with latentlab's metrics: here uniform noise and a trained run's
//! samples, against the test set of the run's dataset. A trained model must beat noise.
//!
//! cargo run --release --example score_arrays -- RUN_FOLDER

use latentlab::{EvalOptions, Images, Metric, Run, score};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: score_arrays RUN_FOLDER"))?;
    let run = Run::open(&path)?;
    let n = 500;
    let options = EvalOptions { n, metrics: vec![Metric::Fid, Metric::Prd], verbose: false, ..Default::default() };
    // Any array of N×C×H×W floats in [0, 1] will do; a tiny LCG keeps the example dependency-free.
    let mut state = 1u64;
    let noise: Vec<f32> = (0..n * run.shape().len())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let noise = score(&Images::new(run.shape(), noise)?, &run.config().dataset, None, &options)?;
    let samples = score(&run.sample(n, 1)?, &run.config().dataset, None, &options)?;
    let fid = |r: &latentlab::EvalReport| r.fid.unwrap_or(f64::NAN);
    let recall = |r: &latentlab::EvalReport| r.recall.unwrap_or(f64::NAN);
    println!(
        "against {}: uniform noise FID {:.1} recall {:.2}; {} samples FID {:.1} recall {:.2}",
        run.config().dataset,
        fid(&noise),
        recall(&noise),
        run.model().name(),
        fid(&samples),
        recall(&samples)
    );
    anyhow::ensure!(fid(&samples) < fid(&noise), "the model's samples do not beat uniform noise");
    Ok(())
}
