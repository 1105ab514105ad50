//! Prometheus exposition of the probes (issue 4).
