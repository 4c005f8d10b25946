#!/usr/bin/env bash
# The main job on the bundled model, from a fresh clone: build the CLI, inspect stories260K, plan
# and run a llama.cpp Q4_K_M-style compression, and show what was written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -p pareto-cli
pareto=target/release/pareto
out=${1:-target/demo/stories260K-q4_k_m}

$pareto inspect models/stories260K --limit 12
$pareto plan models/stories260K --recipe gguf-q4_k_m --limit 12
$pareto compress models/stories260K --recipe gguf-q4_k_m --out "$out" --force --limit 12
ls -l "$out"
