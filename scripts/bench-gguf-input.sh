#!/usr/bin/env bash
# GGUF-as-input benchmarks of BENCHMARKS.md ("GGUF as input: SmolLM2"), side by side with llama.cpp:
# perplexity under llama.cpp's protocol, inspect/convert, and Q8_0 → Q4_K_M re-export (bytes compared).
# Needs: target/release/pareto, models/smollm2 (scripts/fetch-models.sh), llama.cpp builds in
# $LLAMA_NATIVE and $LLAMA_PORTABLE (bin folders; see shared SETUP), a Python with `gguf` as $GGUF_PY.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLAMA_NATIVE:?bin folder of a native llama.cpp build}" "${LLAMA_PORTABLE:?bin folder of a portable build}"
py=${GGUF_PY:-python3}
pareto="$root/target/release/pareto"
smol="$root/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PARETO_CACHE_DIR="$work/cache"
python3 - "$root/assets/samples/tinystories/tinystories-valid-excerpt.txt" "$work/ts65k.raw" <<'PY'
import sys
open(sys.argv[2], "w", encoding="utf-8").write(open(sys.argv[1], encoding="utf-8").read()[:65536])
PY
t() { /usr/bin/time -f "$1: wall %e s, peak RSS %M KB" "${@:2}"; }
lscpu | grep -E "Model name" ; grep -o -w -E "avx2|avx512f" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for i in 1 2; do
  t "pareto eval" "$pareto" eval "$smol" --samples "$work/ts65k.raw" --protocol llama.cpp --window 512 \
    --max-chars 10000000 --greedy-steps 0 --batch 1 2>&1 | grep -E "original|wall"
  t "llama-perplexity native" "$LLAMA_NATIVE/llama-perplexity" -m "$smol" -f "$work/ts65k.raw" -c 512 -b 512 -t 2 2>&1 | grep -E "Final|wall"
done
t "llama-perplexity portable" "$LLAMA_PORTABLE/llama-perplexity" -m "$smol" -f "$work/ts65k.raw" -c 512 -b 512 -t 2 2>&1 | grep -E "Final|wall"
t "pareto convert" "$pareto" convert "$smol" --out "$work/hf" 2>&1 | grep wall
t "pareto inspect" "$pareto" inspect "$smol" 2>&1 | grep wall
python3 "$root/scripts/gguf-header-8b.py" "$work/8b.gguf" > /dev/null
for i in 1 2 3; do t "pareto inspect 8B-shaped header" "$pareto" inspect "$work/8b.gguf" --json 2>&1 >/dev/null | grep wall; done
"$LLAMA_PORTABLE/llama-quantize" --allow-requantize "$smol" "$work/q8.gguf" Q8_0 2 > /dev/null 2>&1
for i in 1 2; do
  rm -rf "$PARETO_CACHE_DIR" "$work/pq" "$work/lq.gguf"
  t "llama-quantize Q8_0->Q4_K_M" "$LLAMA_PORTABLE/llama-quantize" --allow-requantize "$work/q8.gguf" "$work/lq.gguf" Q4_K_M 2 2>&1 | grep wall
  t "pareto first open" "$pareto" compress "$work/q8.gguf" --recipe gguf-q4_k_m --format gguf --out "$work/pq" 2>&1 | grep wall
  t "pareto cached" "$pareto" compress "$work/q8.gguf" --recipe gguf-q4_k_m --format gguf --out "$work/pq" --force 2>&1 | grep wall
  t "pareto cached --no-metrics" "$pareto" compress "$work/q8.gguf" --recipe gguf-q4_k_m --format gguf --out "$work/pq" --force --no-metrics 2>&1 | grep wall
done
"$py" - "$work/lq.gguf" "$work/pq/model.gguf" <<'PY'
import sys
from gguf import GGUFReader
a, b = ({t.name: t for t in GGUFReader(p).tensors} for p in sys.argv[1:3])
same = [n for n in a if n in b and a[n].tensor_type == b[n].tensor_type and a[n].data.tobytes() == b[n].data.tobytes()]
print(f"tensors: {len(a)} vs {len(b)}, byte-identical {len(same)}; differ: {[n for n in a if n not in same][:8]}")
PY
