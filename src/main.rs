use clap::Parser;

// See Cargo.toml: the system allocator's page churn costs ~17 % of a convolutional training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = latentlab::cli::Cli::parse();
    if let Err(e) = latentlab::cli::run(cli) {
        // Ctrl-C during training is a clean stop (checkpoint saved), reported with the shell's 130.
        if let Some(i) = e.downcast_ref::<latentlab::train::trainer::Interrupted>() {
            eprintln!("{i}");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
