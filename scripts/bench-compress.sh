#!/usr/bin/env bash
# End-to-end compress benchmark on a synthetic LLaMA-8B-shaped F16 model (~16 GB, 4 shards):
# wall time and peak RSS per preset, beside `cp` of the same source. Not run in CI.
#   bash scripts/bench-compress.sh [size=8b|1b] [preset[:format]...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
size=${1:-8b}; shift || true
presets=${*:-w8 w4-g128 fp8 gguf-q8_0 w4-g128:compressed-tensors gguf-q8_0:gguf gguf-q4_k_m:gguf}
data=bench-data/synth$size
cargo build --release -q -p pareto-cli -p pareto-core --examples
[ -d "$data" ] || target/release/examples/synth_model "$data" "$size"
largest=$(target/release/pareto inspect "$data" --json | python3 -c 'import json,sys; print(max(t["nbytes"] for t in json.load(sys.stdin)["tensors"]))')
src_bytes=$(du -sb "$data" | cut -f1)
row() { printf '| %s | %s | %s | %s |\n' "$@"; }
echo "source: $data, $src_bytes bytes; largest tensor $largest bytes; RSS goal 2×largest+256 MiB = $(( (2*largest)/1048576 + 256 )) MiB"
row "job" "wall s" "peak RSS MiB" "output bytes"
row "---" "---" "---" "---"
measure() { # name, command...
  local name=$1; shift
  rm -rf bench-data/out; sync; local log; log=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$log" "$@" >/dev/null 2>&1
  read -r wall rss <"$log"
  row "$name" "$wall" "$(( rss / 1024 ))" "$(du -sb bench-data/out | cut -f1)"
}
measure "cp -r" cp -r "$data" bench-data/out
for spec in $presets; do
  p=${spec%%:*}; fmt=safetensors; [ "$spec" != "$p" ] && fmt=${spec#*:}
  # The synthetic model has no tokenizer: its GGUF holds the tensors only.
  extra=(); [ "$fmt" = gguf ] && extra=(--gguf-weights-only)
  measure "pareto compress $p --format $fmt" target/release/pareto compress "$data" --recipe "$p" --format "$fmt" --out bench-data/out --force "${extra[@]}"
done
rm -rf bench-data/out
