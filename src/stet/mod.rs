//! The STET protocol shared by probes and simulator (issue 2).
