//! Pictures: image grids and .npy sample files (`grid`), curves and scatter plots (`plot`),
//! the training GIF (`gif`), latent maps (`latent`), latent walks (`walk`),
//! latent vector arithmetic (`arithmetic`).

pub mod arithmetic;
pub mod gif;
pub mod grid;
pub mod latent;
pub mod plot;
pub mod walk;
