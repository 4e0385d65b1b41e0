//! Least-squares GAN (Mao et al. 2017) on the DCGAN networks: D regresses real images to 1 and
//! generated ones to 0, and G pulls D's output on its images to 1. The squared loss keeps giving G
//! gradient for samples D already classifies correctly but that lie far from the data, where the
//! BCE game saturates. Everything but the game's losses is the DCGAN's.

use super::game::GameLoss;
use super::registry::{HeldOut, ModelDecl};

pub const DECL: ModelDecl = ModelDecl {
    name: "lsgan",
    game: Some(GameLoss::LeastSquares),
    held_out: HeldOut {
        units: "test: D's least-squares loss (loss), G's least-squares loss, mean D(x) (d_real) and D(G(z)) (d_fake) \
                on test images (raw outputs; 1/2 at the optimum)",
        lower_is_better: false,
    },
    // Radford et al.'s 2e-4: the DCGAN's 8e-4 was measured for the BCE game only.
    defaults: |_| super::registry::gan_defaults(15),
    // The two-conv D the LSGAN was measured with (the 3×3 layer was measured for the BCE game).
    d_conv3: false,
    ..super::dcgan::DECL
};
