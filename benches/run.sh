#!/usr/bin/env bash
# Runs every benchmark in release and prints one table: figure, value, baseline measured in the
# same run, ratio, target; then the machine. Sizes: each bench's default (the issues' figures);
# DISPO_BENCH_ROWS / DISPO_BENCH_SECS make a quick run.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
for b in sim_throughput engine import probe report postgres; do
  echo "== $b" >&2
  cargo bench --bench "$b" 2>&2 | tee -a "$out" >&2
done
echo
echo "| figure | value | baseline (same run) | ratio | target |"
echo "|---|---|---|---|---|"
grep -E '^\| ' "$out" | grep -v -E '^\| (figure|---)' | grep -v 'import of' || true
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
rm -f "$out"
