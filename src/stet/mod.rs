//! The STET PSD2 protocol as both sides speak it: message models and error codes, eIDAS
//! certificate reading (organization identifier, PSD2 roles, serial, expiry), and draft-cavage
//! HTTP request signing and verification. Shared by the probes (which sign) and the simulator
//! (which verifies): one implementation, two callers.

pub mod certs;
pub mod der;
pub mod models;
pub mod signing;
