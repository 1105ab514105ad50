//! The embedded STET bank simulator (issue 2).
