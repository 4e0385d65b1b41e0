//! Conditional GAN (Mirza & Osindero 2014): the one-hot label is concatenated to G's input z and to
//! D's input image, so G learns p(x|y) and `sample --class k` draws class k. Same networks, game
//! and recipe as `gan.rs`, with `cond_dim = classes`; the conditioning happens in `Adversary`.

use super::registry::ModelDecl;

pub const DECL: ModelDecl = ModelDecl { name: "cgan", conditional: true, ..super::gan::DECL };
