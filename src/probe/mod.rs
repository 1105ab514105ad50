//! Probes and the run daemon (issue 3).
