//! Nodes in other data centres reach the shared PostgreSQL store over the network: the URL's
//! `sslmode=verify-full` must give TLS with the server's certificate checked, and a server whose
//! certificate another CA signed must be refused with a reason, not used.

use std::process::Command;

use crate::support::{dispo_bin, tmp_dir};

#[test]
fn a_node_reaches_postgresql_over_verified_tls_and_refuses_a_foreign_certificate() {
    let d = tmp_dir("pg_tls", "verify");
    // The sandbox PKI's server certificate names localhost and 127.0.0.1.
    let pki = dispo::sim::pki::ensure(&d.join("pki")).unwrap();
    let cluster = dispo::store::pg_cluster::Cluster::start_with(
        dispo::store::pg_cluster::Durability::Off,
        Some((&pki.server_cert, &pki.server_key)),
    )
    .unwrap();
    let csv = d.join("day.csv");
    std::fs::write(
        &csv,
        "received_at,establishment,interface,service,source,tpp,status,latency_ms,error_code,request_id\n\
         2026-11-02T10:00:00Z,13807,api,cbpii,log,PSDFR-ACPR-1,200,120,,r1\n\
         2026-11-02T10:00:01Z,13807,api,cbpii,log,PSDFR-ACPR-1,200,130,,r2\n",
    )
    .unwrap();
    let url = |ca: &std::path::Path| {
        format!(
            "postgres://dispo@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            cluster.port(),
            ca.display()
        )
    };
    let import = |db: &str| {
        Command::new(dispo_bin())
            .args(["import", "--db", db])
            .arg(&csv)
            .output()
            .unwrap()
    };
    let o = import(&url(&pki.ca_cert));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(text.contains('2'), "{text}");

    // Another CA (a second sandbox PKI): the same server is not trusted.
    let other = dispo::sim::pki::ensure(&d.join("other-pki")).unwrap();
    let o = import(&url(&other.ca_cert));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
