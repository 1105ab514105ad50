//! Probe definitions: TOML -> validated types (issue 3).
