//! Training loops: one per optimiser pattern. `likelihood` (one optimiser: AE, VAE, CVAE).

pub mod checkpoint;
pub mod likelihood;
pub mod log;

pub use likelihood::train;
