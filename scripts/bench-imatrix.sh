#!/usr/bin/env bash
# Importance-weighted Q4_K_M on SmolLM2-135M (BENCHMARKS.md, "Importance-weighted Q4_K_M"): Pareto's
# imatrix, then Q4_K_M with and without it by Pareto and with it by `llama-quantize --imatrix` (the
# same file), tensor bytes compared, and both Pareto artifacts scored on held-out text.
# Needs: target/release/pareto, models/smollm2 (scripts/fetch-models.sh), a portable llama.cpp build
# in $LLAMA_PORTABLE (bin folder; see shared SETUP), a Python with `gguf` as $GGUF_PY.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLAMA_PORTABLE:?bin folder of a portable llama.cpp build}"
py=${GGUF_PY:-python3}
windows=${WINDOWS:-32}
pareto="$root/target/release/pareto"
smol="$root/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
samples="$root/assets/samples/tinystories/tinystories-valid-excerpt.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t() { local label=$1; shift; /usr/bin/time -f "$label: wall %e s, peak RSS %M KiB" "$@"; }

# Calibrated on the text after the first 65,536 characters; scored on those first 65,536 (held out).
t "pareto imatrix ($windows x 512)" "$pareto" imatrix "$smol" --samples "$samples" --skip 65536 \
  --windows "$windows" --out "$work/im.gguf" 2>&1 | grep -E "wall|wrote"
t "llama-quantize --imatrix Q4_K_M" "$LLAMA_PORTABLE/llama-quantize" --allow-requantize --imatrix "$work/im.gguf" \
  "$smol" "$work/llama.gguf" Q4_K_M 2 2>&1 | grep -E "wall|loaded"
t "pareto compress --imatrix" "$pareto" compress "$smol" --recipe gguf-q4_k_m --imatrix "$work/im.gguf" \
  --format gguf --out "$work/weighted" 2>&1 | grep -E "wall"
t "pareto compress (no imatrix)" "$pareto" compress "$smol" --recipe gguf-q4_k_m --format gguf \
  --out "$work/plain" 2>&1 | grep -E "wall"
"$py" - "$work/llama.gguf" "$work/weighted/model.gguf" "$work/plain/model.gguf" <<'PY'
import sys
from gguf import GGUFReader
a, b, c = ({t.name: t for t in GGUFReader(p).tensors} for p in sys.argv[1:4])
same = lambda x, y: [n for n in x if n in y and x[n].tensor_type == y[n].tensor_type and x[n].data.tobytes() == y[n].data.tobytes()]
s = same(a, b)
print(f"llama-quantize --imatrix vs pareto --imatrix: {len(s)} of {len(a)} tensors byte-identical; differ: {[n for n in a if n not in s][:8]}")
print(f"pareto --imatrix vs without: {len(a) - len(same(b, c))} tensors differ")
PY
for v in plain weighted; do
  "$pareto" eval "$smol" --compressed "$work/$v/model.gguf" --samples "$samples" --json 2>/dev/null |
    "$py" -c "import json,sys; d=json.load(sys.stdin); c=d['decoder']['comparison']; print('$v: KL %.4f, top-1 %.2f %%, PPL %.4f (original %.4f)' % (c['mean_kl'], 100*c['top1_agreement'], c['compressed']['perplexity'], c['original']['perplexity']))"
done
