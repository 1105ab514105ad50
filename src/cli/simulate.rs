//! `dispo simulate`: the embedded Banque Populaire STET sandbox as a server of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::sim::{SimOptions, Simulator, faults::FaultPlan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// HTTPS address (mutual TLS on the API hosts `www.<code>.sim.localhost`).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Where the sandbox PKI lives; created when missing (ca.pem, server.pem, tpp-qwac.pem/.key,
    /// tpp-qseal.pem/.key).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: PathBuf,
    /// Plain-HTTP admin API (faults, access log); loopback addresses only.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Fault plan (TOML) in force from the start.
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let faults = match &args.faults {
        Some(p) => FaultPlan::from_toml_file(p)?,
        None => FaultPlan::default(),
    };
    let sim = Simulator::start(SimOptions {
        listen: args.listen,
        admin_listen: args.admin_listen,
        pki_dir: args.pki_dir,
        faults,
    })
    .await?;
    println!(
        "dispo simulate: STET sandbox on https://{} (hosts www.<code>.sim.localhost, psu.<code>.sim.localhost)",
        sim.api_addr
    );
    if let Some(a) = sim.admin_addr {
        println!(
            "admin API on http://{a} (GET/PUT/DELETE /faults, GET/DELETE /access-log, GET /health)"
        );
    }
    println!(
        "PKI in {} (ca.pem, tpp-qwac.pem/.key, tpp-qseal.pem/.key; client_id {})",
        sim.pki.dir.display(),
        crate::sim::pki::SANDBOX_TPP_ID
    );
    super::shutdown_signal().await;
    tracing::info!("stopping the simulator");
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
