//! The `passerelle` command; everything it does lives in the library.

use clap::Parser;

/// jemalloc, for the whole process, SQLite's allocations included (see
/// `passerelle::allocator`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let readable: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(why) = passerelle::cli::secret_in_argv(&readable) {
        eprintln!("passerelle: {why}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = passerelle::cli::Cli::parse_from(args);
    match passerelle::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("passerelle: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
