//! dispo watches a bank's PSD2 dedicated interface (STET funds confirmation) and proves how
//! available and fast it was, per RTS 2018/389 Art. 32/33 and EBA/GL/2018/07.
//!
//! Data flows one way; each stage is a module with a small typed interface:
//!
//! ```text
//!  probe (scheduled mTLS, signed requests) ─┐
//!  import (gateway logs)                    ├─> store (SQLite) ─> engine (pure counting) ─┬─> alert (live, outbox)
//!                                           │                                           ├─> report (polars, xlsx, charts, html, csv)
//!  sim (embedded STET bank) <── probe       │                                           └─> evidence (packs for the ACPR)
//! ```
//!
//! - [`domain`]: the vocabulary (establishment code, IBAN, amount, interface, outcome, observation).
//! - [`stet`]: the protocol shared by probes and simulator (models, error codes, request signing).
//! - [`config`]: probe definitions (TOML) turned once into validated types, errors with file:line.
//! - [`probe`]: schedules, per-phase timed requests, outcome classification, the `run` daemon.
//! - [`store`]: SQLite through sqlx; observations, heartbeats, outbox.
//! - [`period`]: the one way into a period (look-back, whole weeks, coverage) for every command.
//! - [`engine`]: the counting method (episodes, days, weeks, fallback); no I/O, no clock.
//! - [`alert`]: live Art. 33 detection and delivery to webhooks, Slack, Alertmanager, e-mail.
//! - [`metrics`]: Prometheus exposition of the probes.
//! - [`report`]: the quarterly publication.
//! - [`import`]: observation CSV and gateway log import.
//! - [`follow`]: gateway logs followed live by `dispo run` (`[[source]]`), like `tail -F`.
//! - [`evidence`]: evidence packs with SHA-256 manifests.
//! - [`status`]: the public status page (HTML, JSON, Atom) of `dispo run --http-listen` and `dispo status`.
//! - [`escape`]: data made harmless for CSV, Slack and Markdown.
//! - [`files`]: files and directories readable by their owner only.
//! - [`messages`]: error messages with one cause, said once.
//! - [`sim`]: the embedded Banque Populaire STET sandbox with fault injection.
//! - [`cli`]: one file per subcommand.

pub mod alert;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod escape;
pub mod evidence;
pub mod files;
pub mod follow;
pub mod import;
pub mod messages;
pub mod metrics;
pub mod period;
pub mod probe;
pub mod report;
pub mod sim;
pub mod status;
pub mod stet;
pub mod store;
pub mod synth;

/// Installs ring as the process-wide rustls crypto provider. Call first in `main` and in every
/// test; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
