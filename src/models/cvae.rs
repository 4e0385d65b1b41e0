//! Conditional VAE (Sohn et al. 2015): the VAE of `vae.rs` with the condition row (a one-hot
//! label, or attributes as ±1: `models::condition`) appended to the encoder input and to the
//! decoder's latent input, so `decode(z, y)` renders condition `y` on demand. Same networks,
//! recipe and options as the VAE, plus `--condition`; `Vae::new` takes the spec's condition width.

use super::registry::ModelDecl;

pub const DECL: ModelDecl = ModelDecl { name: "cvae", conditional: true, options: OPTIONS, ..super::vae::DECL };

/// The VAE's options and what the model is conditioned on.
const OPTIONS: &[&str] =
    &["hidden", "decoder", "decoder_sigma", "beta", "arch", "objective", "iwae_k", "kl_warmup", "width", "condition"];
