#!/usr/bin/env bash
# Build the `cuda` feature on a machine without a GPU (toolkit: scripts/cuda-toolchain.sh).
#
#   scripts/build-cuda.sh check   # CI: type-check all cuda code; candle-kernels' build
#                                 # script still runs nvcc (PTX + libmoe.a for sm_90a)
#   scripts/build-cuda.sh bin     # linked `pareto` binary with cuda: target-cuda/release/pareto
#
# Env: CUDA_COMPUTE_CAP (default 90 = H100/H200), CARGO_TARGET_DIR (default target-cuda,
# kept apart so the normal build's cache is untouched). Extra args go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cuda-toolchain.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-cuda}"

mode="${1:-check}"
shift || true
case "$mode" in
  check)
    # --release so the nvcc outputs are shared with `bin` (build scripts run per profile).
    cargo check --release -p pareto-eval -p pareto-cli --features cuda "$@"
    ;;
  bin)
    # The binary needs at run time: the driver libcuda.so.1 (from the GPU machine) and
    # libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13
    # (+ libnvrtc-builtins.so.13.0). They are ~800 MB, so they are not copied next to it:
    # the RUNPATH looks beside the binary and in /usr/local/cuda/lib64; elsewhere set
    # LD_LIBRARY_PATH (e.g. to a pip install's site-packages/nvidia/cu13/lib).
    # `cargo rustc` passes the link args to the final binary only (no rebuild of deps).
    cargo rustc --release -p pareto-cli --bin pareto --features cuda "$@" -- \
      -C 'link-arg=-Wl,-rpath,$ORIGIN:/usr/local/cuda/lib64'
    echo "built $CARGO_TARGET_DIR/release/pareto"
    ;;
  *)
    echo "usage: $0 check|bin [cargo args]" >&2
    exit 2
    ;;
esac
