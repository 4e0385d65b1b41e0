//! Conditional GAN (Mirza & Osindero 2014): the condition row (a one-hot label, or attributes as
//! ±1: `models::condition`) is concatenated to G's input z and to D's input image, so G learns
//! p(x|y) and `sample --class k` draws class k. Same networks, game and recipe as `gan.rs`; the
//! conditioning happens in `Adversary` (a convolutional D is conditioned by projection instead).

use super::registry::ModelDecl;

pub const DECL: ModelDecl =
    ModelDecl { name: "cgan", conditional: true, options: super::registry::CGAN_OPTIONS, ..super::gan::DECL };
