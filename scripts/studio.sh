#!/usr/bin/env bash
# The studio, from a fresh clone: installs what is missing (WebKitGTK packages, npm packages, the
# MiniLM model), builds the UI and the app, and launches it with the bundled model already open.
#   scripts/studio.sh [model-path]     (default: models/stories260K)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
model=${1:-$root/models/stories260K}

sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
for p in libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  sudo_if apt-get update -qq
  sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install Node.js 20.19+ first" >&2; exit 1; }

[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
scripts/fetch-models.sh || echo "warning: could not fetch MiniLM (offline?); the bundled stories260K still works" >&2
(cd ui && npx vite build)
cargo build --release -p pareto-app --features custom-protocol
exec "$CARGO_TARGET_DIR/release/pareto-app" --open "$model"
