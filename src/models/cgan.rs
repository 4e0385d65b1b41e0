//! Conditional GAN (Mirza & Osindero 2014): the one-hot label is concatenated to G's input z and to
//! D's input image, so G learns p(x|y) and `sample --class k` draws class k. Same networks as
//! `gan.rs` (MLP) with `cond_dim = classes`; the conditioning happens in `Adversary`.
