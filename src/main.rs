//! `dispo`: thin entry point. Installs the TLS crypto provider, sets up logging, parses the
//! command line and hands over to the library; nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use dispo::cli::exit;

fn main() -> ExitCode {
    dispo::install_crypto_provider();
    quiet_on_closed_pipe();
    // Usage errors exit 2 (clap's own code), `--help` and `--version` 0.
    let cli = dispo::cli::Cli::parse();
    let json = cli.log_format == dispo::cli::LogFormat::Json;
    dispo::cli::init_logging(cli.verbose, cli.log_format);
    if matches!(cli.command, dispo::cli::Command::Run(_)) {
        few_malloc_arenas();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(dispo::cli::dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) if dispo::cli::is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) if e.downcast_ref::<dispo::cli::UsageError>().is_some() => {
            // As clap says its own: the message, then how to get help.
            eprintln!("error: {e}\n\nFor more information, try '--help'.");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            if json {
                // The log stack gets the reason as one more JSON line.
                tracing::error!(error = %dispo::messages::one_line(&e), "dispo stopped");
            } else {
                eprintln!("error: {}", dispo::messages::one_line(&e));
            }
            ExitCode::from(exit::ERROR)
        }
    }
}

/// `println!` panics when stdout is a closed pipe (`dispo kpi | head -1`); the reader has had
/// what it wanted, so that one panic ends the process quietly with 0, as `cat` would. Every
/// other panic keeps the default report.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(exit::OK.into());
        }
        default(info);
    }));
}

/// The monitor runs for months: glibc's malloc gives each thread that allocates its own arena
/// (up to eight per core), and memory freed in one stays with it. Two arenas keep `dispo run`
/// at about 80 MB instead of 115 MB over a 10 M-row database at 1 000 probes a second (the
/// daemon bench); set before the runtime starts its threads. Other C libraries: nothing to do.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn few_malloc_arenas() {
    /// `M_ARENA_MAX` in glibc's `malloc.h`.
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // An explicit MALLOC_ARENA_MAX in the environment wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: glibc's mallopt, called before any other thread exists.
        unsafe { mallopt(M_ARENA_MAX, 2) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn few_malloc_arenas() {}
