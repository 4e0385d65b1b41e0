use clap::Parser;

// See Cargo.toml: the system allocator's page churn costs ~17 % of a convolutional training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v3's option enum; the sys crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never hand freed pages back to the kernel: a training step frees and reallocates the same
    // multi-MB buffers every few milliseconds, and after mimalloc's purge delay each comes
    // back as freshly zeroed huge pages (perf: ~4 % of a DCGAN step in `clear_page`). The process
    // keeps its peak footprint, which it reaches in the first step anyway. MIMALLOC_PURGE_DELAY
    // still overrides this.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a documented option; mimalloc reads options at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
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
