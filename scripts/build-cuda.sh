#!/usr/bin/env bash
# Build the `cuda` feature on a machine without a GPU (toolkit: scripts/cuda-toolchain.sh).
#
#   scripts/build-cuda.sh check   # CI: type-check all cuda code; candle-kernels' build
#                                 # script still runs nvcc (PTX + libmoe.a for sm_90a)
#   scripts/build-cuda.sh bin     # linked `pareto` binary with cuda: target-cuda/release/pareto,
#                                 # and target-cuda/gpu-carry/ for scripts/gpu-check.sh on a GPU machine
#
# Env: CUDA_COMPUTE_CAP (default 90 = H100/H200), CARGO_TARGET_DIR (check: default target, shared with
# clippy; bin: default target-cuda, so the linked cuda binary does not replace the normal one).
# Extra args go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cuda-toolchain.sh
mode="${1:-check}"
shift || true
case "$mode" in
  check)
    # Clippy's selection, features and profile plus cuda: crates that do not depend on candle are
    # already checked in this target folder, so only candle and what uses it is checked again.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    cargo check --workspace --all-targets --release --features pareto-eval/cuda "$@"
    ;;
  bin)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-cuda}"
    # Needed at run time: libcuda.so.1 (the driver, on the GPU machine), libcudart.so.13,
    # libcublas.so.13 (+ libcublasLt.so.13) and libcurand.so.10: ~730 MB, too big to carry,
    # so they are not copied next to the binary. RUNPATH: beside the binary, a CUDA 13
    # toolkit, and the pip-installed CUDA 13 libs of the GPU machines' torch venv;
    # elsewhere set LD_LIBRARY_PATH (e.g. to .cuda/cuda-13.0/lib).
    # `cargo rustc` passes the link arg to the final binary only (no rebuild of deps).
    cargo rustc --release -p pareto-cli --bin pareto --features cuda "$@" -- \
      -C 'link-arg=-Wl,-rpath,$ORIGIN:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib'
    echo "built $CARGO_TARGET_DIR/release/pareto"
    # What a GPU machine needs from here, small enough for its 64 MiB carry limit: the stripped binary
    # gzipped (67 MB → 17 MB; mostly PTX text) and the synthetic-model generator.
    carry="$CARGO_TARGET_DIR/gpu-carry"
    mkdir -p "$carry"
    strip -o "$carry/pareto" "$CARGO_TARGET_DIR/release/pareto"
    gzip -f -6 "$carry/pareto"
    CARGO_TARGET_DIR=target cargo build --release -q -p pareto-core --example synth_model
    cp target/release/examples/synth_model "$carry/"
    echo "packed $carry ($(du -sh "$carry" | cut -f1)): bash scripts/gpu-check.sh $carry"
    ;;
  *)
    echo "usage: $0 check|bin [cargo args]" >&2
    exit 2
    ;;
esac
