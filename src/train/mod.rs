//! Training: one loop (`trainer`) for every model; the step (`step`) is per optimiser pattern —
//! `likelihood` (one optimiser: AE, VAE, CVAE) and `adversarial` (alternating: the GAN family and
//! the AAE); `artifacts` draws the pictures, `progress` what the terminal shows.

pub mod adversarial;
mod artifacts;
pub mod likelihood;
pub mod log;
pub mod optim;
mod progress;
pub mod stack;
mod step;
pub mod tensorboard;
pub mod trainer;

pub use artifacts::{fixed_grid_codes, loss_curves, recon_grid};
pub use progress::{evaluate, progress};
pub use trainer::{Diverged, Interrupted, train, train_noted};
