//! Open a trained run and write a grid of samples (one row per class for conditional models).
//!
//! cargo run --release --example sample_from_run -- RUN_FOLDER [N] [OUT.png]

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or_else(|| anyhow::anyhow!("usage: sample_from_run RUN_FOLDER [N] [OUT.png]"))?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let out = args.next().unwrap_or_else(|| "samples.png".into());
    let run = latentlab::Run::open(&path)?;
    let images = run.sample(n, 0)?;
    let ncol = if run.model().is_conditional() { run.classes().len() } else { (n as f64).sqrt().ceil() as usize };
    images.save_png(&out, ncol)?;
    println!("{out}: {n} samples from the {} of {path}", run.model().name());
    Ok(())
}
