//! Training: one loop (`trainer`) for every model; the step is per optimiser pattern —
//! `likelihood` (one optimiser: AE, VAE, CVAE) and `adversarial` (alternating: GAN, DCGAN, cGAN, AAE).

pub mod adversarial;
pub mod checkpoint;
pub mod likelihood;
pub mod log;
pub mod optim;
pub mod trainer;

pub use trainer::{progress, train};
