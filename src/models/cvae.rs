//! Conditional VAE (Sohn et al. 2015): the VAE of `vae.rs` with the one-hot label appended to the
//! encoder input and to the decoder's latent input, so `decode(z, y)` renders class `y` on demand.
//! Same networks, recipe and options as the VAE; `Vae::new` conditions on the label because the
//! declaration says the model is conditional.

use super::registry::ModelDecl;

pub const DECL: ModelDecl = ModelDecl { name: "cvae", conditional: true, ..super::vae::DECL };
