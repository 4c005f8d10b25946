#!/usr/bin/env bash
# Every llama.cpp type Pareto has a GGUF preset for, side by side with llama-quantize on SmolLM2-135M
# (BENCHMARKS.md, "All of llama.cpp's k-quant and legacy presets"): tensor bytes compared (plain, and with
# an importance matrix computed by Pareto on text the scoring does not use), wall time of both tools, and
# each Pareto artifact scored on held-out text (KL divergence vs the original, top-1, perplexity).
# Needs: target/release/pareto, models/smollm2 (scripts/fetch-models.sh), a portable llama.cpp build in
# $LLAMA_PORTABLE (bin folder; see shared SETUP), a Python with `gguf` as $GGUF_PY.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLAMA_PORTABLE:?bin folder of a portable llama.cpp build}"
py=${GGUF_PY:-python3}
types=${TYPES:-"Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q8_0"}
pareto="$root/target/release/pareto"
smol="$root/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
samples="$root/assets/samples/tinystories/tinystories-valid-excerpt.txt"
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
secs() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }

[ -f "$work/im.gguf" ] || "$pareto" imatrix "$smol" --samples "$samples" --skip 65536 --windows 32 --out "$work/im.gguf" -q >/dev/null 2>&1
printf "| type | llama-quantize | Pareto | bytes identical (plain) | bytes identical (imatrix) | KL ± s.e. (held out) | top-1 | PPL |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
for T in $types; do
  t=$(echo "$T" | tr 'A-Z' 'a-z')
  lq=$(secs "$LLAMA_PORTABLE/llama-quantize" --allow-requantize "$smol" "$work/lq-$T.gguf" "$T" 2)
  pq=$(secs "$pareto" compress "$smol" --recipe "gguf-$t" --format gguf --out "$work/pq-$T" --force -q)
  "$LLAMA_PORTABLE/llama-quantize" --allow-requantize --imatrix "$work/im.gguf" "$smol" "$work/lqi-$T.gguf" "$T" 2 >/dev/null 2>&1
  "$pareto" compress "$smol" --recipe "gguf-$t" --imatrix "$work/im.gguf" --format gguf --out "$work/pqi-$T" --force -q >/dev/null 2>&1
  same=$("$py" - "$work/lq-$T.gguf" "$work/pq-$T/model.gguf" "$work/lqi-$T.gguf" "$work/pqi-$T/model.gguf" <<'PY'
import sys
from gguf import GGUFReader
def same(x, y):
    a, b = ({t.name: t for t in GGUFReader(p).tensors} for p in (x, y))
    n = sum(1 for k in a if k in b and a[k].tensor_type == b[k].tensor_type and a[k].data.tobytes() == b[k].data.tobytes())
    return f"{n}/{len(a)}"
print(same(sys.argv[1], sys.argv[2]), same(sys.argv[3], sys.argv[4]))
PY
)
  score=$("$pareto" eval "$smol" --compressed "$work/pq-$T/model.gguf" --samples "$samples" --json 2>/dev/null |
    "$py" -c "import json,sys; c=json.load(sys.stdin)['decoder']['comparison']; print('%.4f ± %.4f | %.2f %% | %.3f' % (c['mean_kl'], c['kl_stderr'], 100*c['top1_agreement'], c['compressed']['perplexity']))")
  set -- $same
  echo "| $T | $lq s | $pq s | $1 | $2 | $score |"
done
