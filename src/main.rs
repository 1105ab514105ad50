//! `dispo`: thin entry point. Installs the TLS crypto provider, sets up logging, parses the
//! command line and hands over to the library; nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    dispo::install_crypto_provider();
    let cli = dispo::cli::Cli::parse();
    dispo::cli::init_logging(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispo::cli::dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
