//! The `passerelle` command; everything it does lives in the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = passerelle::cli::Cli::parse();
    match passerelle::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("passerelle: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
