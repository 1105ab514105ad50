//! Probes (issue 3): scheduled, mutual-TLS, signed requests to the dedicated interface, the
//! fallback and the customer web interface of each establishment, each recorded as an
//! observation with its phases and outcome.
//!
//! In: a validated [`crate::config::Config`]. Out: [`crate::store::StoredObservation`]s, written
//! to the store and then published to observers (live alerts, metrics).

pub mod burst;
pub mod canary;
pub mod daemon;
pub mod durable;
pub mod http;
pub mod order;
pub mod steps;
