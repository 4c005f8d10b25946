#!/usr/bin/env bash
# AWQ and SparseGPT on stories260K, side by side with llm-compressor (BENCHMARKS.md, "AWQ" and
# "SparseGPT"): every artifact scored by the same `pareto eval` on the first 65,536 characters of
# the TinyStories excerpt, calibrated on the text after them (128 windows of 512 tokens).
# Needs: target/release/pareto; for the reference rows a Python with llmcompressor (LLMC_PYTHON,
# default python3; versions in BENCHMARKS.md). Not run in CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pareto="$root/target/release/pareto"
py="${LLMC_PYTHON:-python3}"
model="$root/models/stories260K"
text="$root/assets/samples/tinystories/tinystories-valid-excerpt.txt"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
cal=(--calibration "$text" --calibration-skip 65536)
score() { printf '%-28s ' "$1"; "$pareto" eval "$model" --compressed "$2" 2>&1 | grep -E '^compressed' ; }

printf '[default.quantize]\nformat = "int4_g32_asym"\n' > "$out/rtn-g32-asym.toml"
"$pareto" compress "$model" -r "$out/rtn-g32-asym.toml" --out "$out/rtn32a" --force > /dev/null 2>&1
score "int4 g32 asym RTN" "$out/rtn32a"
"$pareto" compress "$model" -r awq-w4-g32 "${cal[@]}" --out "$out/awq32" --force 2>&1 | grep calibrated
score "int4 g32 asym Pareto AWQ" "$out/awq32"
"$py" "$root/scripts/bench-gptq-llmcompressor.py" "$model" "$text" "$out/llmc-awq32" --method awq --asym --group 32 | tail -1
score "int4 g32 asym llmc AWQ" "$out/llmc-awq32"

for p in sparsegpt-50 sparsegpt-2of4; do
  "$pareto" compress "$model" -r "$p" "${cal[@]}" --out "$out/$p" --force 2>&1 | grep calibrated
  score "Pareto $p" "$out/$p"
done
"$py" "$root/scripts/bench-gptq-llmcompressor.py" "$model" "$text" "$out/llmc-sgpt50" --method sparsegpt --ignore lm_head | tail -1
score "llmc SparseGPT 50%" "$out/llmc-sgpt50"
"$py" "$root/scripts/bench-gptq-llmcompressor.py" "$model" "$text" "$out/llmc-sgpt24" --method sparsegpt --mask 2:4 --ignore lm_head | tail -1
score "llmc SparseGPT 2:4" "$out/llmc-sgpt24"
