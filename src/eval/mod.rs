//! Evaluation: the instruments behind the VAE-vs-GAN claims. Each metric lives in its own file
//! with its own tests and reports its protocol beside its value; `evaluate` runs them on a run.

pub mod coverage;
pub mod evaluate;
pub mod features;
pub mod fid;
pub mod kid;
pub mod knn;
pub mod likelihood;
pub mod prd;
pub mod sharpness;
pub mod stats;
