//! Evaluation: the instruments behind the VAE-vs-GAN claims. Each metric lives in its own file
//! with its own tests; `tasks` runs each on a run and returns its values beside its protocol,
//! `evaluate` drives them and `report` is the typed `eval.json` they fill.

pub mod attr_net;
pub mod attributes;
pub mod class_net;
pub mod coverage;
pub mod evaluate;
pub mod features;
pub mod fid;
pub mod kid;
pub mod knn;
pub mod likelihood;
pub mod prd;
pub mod report;
pub mod sharpness;
pub mod stats;
pub mod tasks;

pub use report::EvalReport;
