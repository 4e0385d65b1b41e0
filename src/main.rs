use clap::Parser;

fn main() {
    let cli = latentlab::cli::Cli::parse();
    if let Err(e) = latentlab::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
