//! Deterministic synthetic observations for benchmarks and demos (issue 7).
