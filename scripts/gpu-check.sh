#!/usr/bin/env bash
# GPU check (issue 8), run on a machine with an NVIDIA GPU: the cuda build of `pareto` compresses and
# validates the bundled model and an 8B-shaped synthetic model on the GPU and on the CPU, checks the
# outputs agree (identical content hashes; perplexity within 1e-4 relative) and prints a timing table.
#   bash scripts/gpu-check.sh [bin-dir]      # bin-dir holds pareto(.gz) + synth_model as packed by
#                                            # `bash scripts/build-cuda.sh bin` (default target-cuda/gpu-carry)
# With the device tool: run(command="bash scripts/gpu-check.sh", carry=["target-cuda/gpu-carry"]).
# Writes the table to ${OUT:-.}/gpu-check.md as well. Needs ~17 GB of free disk for the 8B model.
# Dry run of the script itself on a CPU-only machine: GPU_CHECK_DEVICE=cpu GPU_CHECK_SKIP_8B=1.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${1:-target-cuda/gpu-carry}
pareto=$bin/pareto
if [ ! -x "$pareto" ] && [ -f "$bin/pareto.gz" ]; then
  # Carried gzipped (scripts/build-cuda.sh bin packs it).
  mkdir -p /tmp/pareto-gpu && gunzip -c "$bin/pareto.gz" >/tmp/pareto-gpu/pareto && chmod +x /tmp/pareto-gpu/pareto
  pareto=/tmp/pareto-gpu/pareto
fi
synth=$bin/examples/synth_model
[ -x "$synth" ] || synth=$bin/synth_model
out=${OUT:-.}
work=${GPU_CHECK_DIR:-/tmp/pareto-gpu-check}
gpu=${GPU_CHECK_DEVICE:-cuda:0}
report=$out/gpu-check.md
mkdir -p "$work" "$out"
fail=0
say() { echo "$*" | tee -a "$report"; }
: >"$report"
say "# pareto GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
say ""
say '```'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$report"
ldd "$pareto" | grep -E 'not found|cuda|cublas|curand|nvrtc' | tee -a "$report"
say '```'
if ldd "$pareto" | grep -q 'not found'; then
  say "missing shared libraries (above): put them beside the binary or on LD_LIBRARY_PATH"
  exit 2
fi

# name, then the command; records wall seconds and the content hash (compress) in $work/<name>.json
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  if "$@" --json >"$work/$name.json" 2>"$work/$name.err"; then
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1-$t0:.2f}')"
  else
    echo "FAILED"; tail -3 "$work/$name.err" >&2; fail=1
  fi
}
hash_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['content_hash'])" "$work/$1.json" 2>/dev/null; }
on_gpu() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['device_tensors'])" "$work/$1.json" 2>/dev/null; }

say ""
say "## Compress: GPU vs CPU (content hash must be identical)"
say ""
say "| model | preset | format | CPU s | GPU s | tensors on GPU | identical |"
say "|---|---|---|---:|---:|---:|---|"
compress_pair() { # model label, model dir, preset, format
  local label=$1 dir=$2 preset=$3 fmt=$4 c g same extra=()
  # The synthetic model has no tokenizer: its GGUF holds the tensors only.
  [ "$fmt" = gguf ] && [ ! -f "$dir/tokenizer.json" ] && extra=(--gguf-weights-only)
  c=$(run "$label-$preset-cpu" "$pareto" compress "$dir" --recipe "$preset" --format "$fmt" --out "$work/o-cpu" --force --no-metrics --device cpu "${extra[@]}")
  g=$(run "$label-$preset-gpu" "$pareto" compress "$dir" --recipe "$preset" --format "$fmt" --out "$work/o-gpu" --force --no-metrics --device "$gpu" "${extra[@]}")
  same=no; [ -n "$(hash_of "$label-$preset-cpu")" ] && [ "$(hash_of "$label-$preset-cpu")" = "$(hash_of "$label-$preset-gpu")" ] && same=yes
  [ "$same" = yes ] || fail=1
  say "| $label | $preset | $fmt | $c | $g | $(on_gpu "$label-$preset-gpu") | $same |"
}
for spec in w8:safetensors w4-g32:compressed-tensors fp8:compressed-tensors gguf-q8_0:gguf gguf-q4_0:gguf; do
  compress_pair stories260K models/stories260K "${spec%%:*}" "${spec#*:}"
done
if [ -z "${GPU_CHECK_SKIP_8B:-}" ]; then
  [ -f "$work/synth8b/config.json" ] || "$synth" "$work/synth8b" 8b >/dev/null
  for spec in w8:safetensors w4-g128:compressed-tensors fp8:compressed-tensors gguf-q8_0:gguf gguf-q4_0:gguf; do
    compress_pair synth-8B "$work/synth8b" "${spec%%:*}" "${spec#*:}"
  done
fi
rm -rf "$work/o-cpu" "$work/o-gpu"

say ""
say "## Validation: perplexity on GPU vs CPU (stories260K, PROVENANCE protocol)"
say ""
say "| device | mean NLL | PPL | tokens/s | s |"
say "|---|---:|---:|---:|---:|"
for d in cpu "$gpu"; do
  run "eval-$d" "$pareto" eval models/stories260K --device "$d" --greedy-steps 60 >/dev/null
  python3 - "$work/eval-$d.json" "$d" <<'PY' | tee -a "$report"
import json, sys
d = json.load(open(sys.argv[1]))["decoder"]["original"]
print(f"| {sys.argv[2]} | {d['mean_nll']:.6f} | {d['perplexity']:.6f} | {d['tokens_per_s']:,.0f} | {d['seconds']:.2f} |")
PY
done
python3 - "$work/eval-cpu.json" "$work/eval-$gpu.json" <<'PY' | tee -a "$report" || fail=1
import json, sys
c, g = (json.load(open(p))["decoder"] for p in sys.argv[1:3])
rel = abs(c["original"]["mean_nll"] - g["original"]["mean_nll"]) / c["original"]["mean_nll"]
same_greedy = c["greedy"]["original"] == g["greedy"]["original"]
print(f"\nrelative NLL difference {rel:.2e} (limit 1e-4); greedy ids identical: {same_greedy}")
sys.exit(0 if rel <= 1e-4 and same_greedy else 1)
PY
say ""
[ $fail = 0 ] && say "RESULT: all checks passed" || say "RESULT: some checks FAILED (see above and $work/*.err)"
exit $fail
