//! Evidence packs: built from imported data, verified, secrets scanned.
