//! Evidence packs for the supervisor (issue 6).
