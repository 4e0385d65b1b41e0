//! Train a small VAE on the digits dataset from a configuration built in code, then sample from it
//! and check that decoding its own codes reconstructs the samples.
//!
//! cargo run --release --example train_in_code -- [OUT_FOLDER]
//! (datasets from $LATENTLAB_DATA, else ./data)

use latentlab::{ModelKind, Options, Run, RunConfig};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "runs/example-vae".into());
    let config = RunConfig::resolve(
        ModelKind::Vae,
        Options { dataset: Some("digits".into()), epochs: Some(200), latent_dim: Some(8), ..Default::default() },
    )?;
    let run = Run::train(&config, &out)?;
    let samples = run.sample(64, 0)?;
    samples.save_png(format!("{out}/final/example-samples.png"), 8)?;
    // Posterior means of the samples, decoded again: close to the samples for a trained VAE.
    let z = run.encode(&samples)?;
    let again = run.decode(&z)?;
    let mse =
        samples.data.iter().zip(&again.data).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / samples.data.len() as f32;
    println!("{}: {} samples of {:?}; encode→decode mean squared error {mse:.4}", out, samples.n, samples.shape);
    anyhow::ensure!(mse < 0.05, "the trained VAE does not reconstruct its own samples (mse {mse})");
    // A collapsed posterior would decode every code to the same mean image: the samples must differ.
    let per = samples.shape.len();
    let spread = (0..per)
        .map(|p| {
            let v: Vec<f32> = (0..samples.n).map(|i| samples.data[i * per + p]).collect();
            let m = v.iter().sum::<f32>() / v.len() as f32;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
        })
        .sum::<f32>()
        / per as f32;
    println!("mean per-pixel standard deviation across samples {spread:.3}");
    anyhow::ensure!(spread > 0.05, "the samples are all alike (posterior collapse?): spread {spread}");
    Ok(())
}
