#!/usr/bin/env bash
# The whole pipeline headless on the bundled model, from a fresh clone: build the CLI, inspect
# stories260K, plan and compress it (dense + a llama.cpp GGUF), validate the compressed model against
# the original, project serving cost, and sweep three recipes into a reviewer's report.
#   bash scripts/demo.sh [out-dir]      (default: target/demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -p pareto-cli
pareto=target/release/pareto
out=${1:-target/demo}
mkdir -p "$out"

$pareto inspect models/stories260K --limit 12
$pareto plan models/stories260K --recipe gguf-q4_k_m --limit 12
$pareto compress models/stories260K --recipe w8 --out "$out/w8" --force --limit 12
$pareto compress models/stories260K --recipe gguf-q4_k_m --format gguf --out "$out/gguf-q4_k_m" --force --limit 5
$pareto eval models/stories260K --compressed "$out/w8"
$pareto project models/stories260K --recipe w8 --device rpi5 --scenario edge
$pareto sweep models/stories260K --recipes w8,w4-g32,gguf-q4_0 --scenario edge --out "$out/sweep"
echo "reviewer's report: $out/sweep/report.html"
