#!/usr/bin/env bash
# Fuzzes the parsers of untrusted files (fuzz/fuzz_targets: safetensors model, shard index, GGUF,
# recipe TOML, config.json, run record, sample files, importance matrices, measurements CSV) with
# cargo-fuzz / libFuzzer, each for SECONDS (default 600).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# cargo-fuzz builds with sanitizer flags only nightly rustc accepts; this machine has one stable
# toolchain, so RUSTC_BOOTSTRAP=1 lets it take them (the fuzz build has its own workspace and target
# folder, so the main build never sees those flags). New corpus entries land in fuzz/corpus/TARGET;
# a crash is written to fuzz/artifacts/TARGET and fails the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
seconds=${1:-600}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_model shard_index gguf_file recipe_toml config_json run_record samples imatrix_file measurements_csv)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
# PARETO_FUZZ_SCRATCH=1 (the CI smoke): new inputs go to a scratch folder and the committed corpus is
# only read, so a test run leaves the checkout as it was.
scratch=""
if [ -n "${PARETO_FUZZ_SCRATCH:-}" ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi
for t in "${targets[@]}"; do
  echo "=== $t: $seconds s"
  corpus=()
  if [ -n "$scratch" ]; then
    mkdir -p "$scratch/$t"
    corpus=("$scratch/$t" "corpus/$t")
  fi
  cargo fuzz run -O "$t" "${corpus[@]}" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 2>&1 | tail -3
done
