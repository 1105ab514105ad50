//! The quarterly publication (issue 5).
