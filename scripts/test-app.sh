#!/usr/bin/env bash
# Everything the studio needs for its tests on a fresh Debian CI machine with no display:
# system packages, npm packages, tauri-driver, type-generation check, vitest, Rust command tests,
# the app build, and WebDriver end-to-end tests under Xvfb. Exits non-zero on any failure and ends
# with a summary line. Screenshots: target/screenshots/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The workspace's target folder and release profile: the engine crates are already built there by the tests.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
summary=()
step() { echo; echo "=== $*"; }
ok() { summary+=("PASS $1"); }

sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need_pkgs=()
for p in libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev \
         xvfb webkit2gtk-driver xauth rpm; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "apt: ${need_pkgs[*]}"
  sudo_if apt-get update -qq
  sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

step "npm ci (ui/)"
(cd ui && npm ci --no-audit --no-fund)

if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  step "cargo install tauri-driver 2.1.0"
  cargo install tauri-driver --version 2.1.0 --locked
fi
export PATH="$HOME/.cargo/bin:$PATH"

# scripts/test.sh has run them already in its workspace-wide test build (PARETO_APP_BUILT=1).
if [ -z "${PARETO_APP_BUILT:-}" ]; then
  step "Rust command tests (cargo test --release -p pareto-app; also regenerates ui/src/api/gen)"
  cargo test --release -p pareto-app --locked 2>&1 | tee /tmp/pareto-app-test.log
  rust_line=$(grep -E "^test result:" /tmp/pareto-app-test.log | head -1)
  ok "cargo test --release -p pareto-app: $rust_line"
fi

step "generated TypeScript types are committed and current"
git diff --exit-code -- ui/src/api/gen
untracked=$(git ls-files --others --exclude-standard -- ui/src/api/gen)
if [ -n "$untracked" ]; then echo "untracked generated types: $untracked" >&2; exit 1; fi
ok "ui/src/api/gen matches the Rust DTOs"

step "TypeScript strict check + vitest (mock api)"
(cd ui && npx tsc --noEmit && npx vitest run) 2>&1 | tee /tmp/pareto-vitest.log
ok "vitest: $(sed 's/\x1b\[[0-9;]*m//g' /tmp/pareto-vitest.log | grep -E "Tests +[0-9]+" | tail -1 | xargs)"

step "build UI and app"
(cd ui && npx vite build)
if [ -z "${PARETO_APP_BUILT:-}" ]; then
  cargo build --release -p pareto-app --locked
fi
test -x "$CARGO_TARGET_DIR/release/pareto-app"
ok "build"

step "end-to-end (WebDriver, Xvfb)"
xvfb-run -a -s "-screen 0 1400x900x24" bash -c 'cd ui && node --test --test-reporter=spec --test-concurrency=1 e2e/' 2>&1 | tee /tmp/pareto-e2e.log
ok "e2e: $(grep -E "^ℹ (pass|fail)" /tmp/pareto-e2e.log | tr '\n' ' ')"

step "installable bundle: the .rpm and the .deb from the Tauri CLI; the .deb installed with apt, end-to-end on the installed app"
# Packages the binaries the workspace build made (custom-protocol is a default feature; the .deb
# also carries the `pareto` CLI, which the studio's Slurm sweeps run): nothing recompiles. Built
# alone only when this script runs without the workspace tests (`-p pareto-cli` resolves features
# differently from the workspace and would compile the engine again).
[ -x "$CARGO_TARGET_DIR/release/pareto" ] || cargo build --release -p pareto-cli --locked
# The .rpm first: bundling stamps the app binary with the package type, and the .deb's is the one
# installed and driven below. The .rpm is checked with Debian's rpm tools (its header, what it
# requires, its files; the CLI inside runs): it cannot be installed on this Debian machine.
(cd src-tauri && ../ui/node_modules/.bin/tauri bundle --bundles rpm --ci)
rpm=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/rpm/*.rpm | head -1)
# Captured first: `grep -q` leaving a pipe early would fail the step under pipefail.
rpm_files=$(rpm -qpl "$rpm")
[ "$(rpm -qp --queryformat '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}' "$rpm")" = "pareto 0.1.0-1 x86_64" ]
grep -q "libwebkit2gtk-4.1.so.0" <<<"$(rpm -qpR "$rpm")"
grep -qx "/usr/lib/Pareto/models/stories260K/model.safetensors" <<<"$rpm_files"
grep -qx "/usr/share/mime/packages/pareto.xml" <<<"$rpm_files"
rpm_root=$(mktemp -d)
# rpm2archive, not rpm2cpio: Debian's rpm2cpio (4.18) exits 1 after writing a complete archive.
(cd "$rpm_root" && rpm2archive - <"$rpm" | tar xz)
"$rpm_root/usr/bin/pareto" --version
grep -q "MimeType=.*application/x-gguf" "$rpm_root/usr/share/applications/Pareto.desktop"
rm -rf "$rpm_root"
ok "built $(basename "$rpm") ($(wc -l <<<"$rpm_files") files; header, requirements, files and CLI checked)"
(cd src-tauri && ../ui/node_modules/.bin/tauri bundle --bundles deb --ci)
deb=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb | head -1)
sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb"
dpkg -L pareto | grep -q "models/stories260K/model.safetensors"
dpkg -L pareto | grep -qx "/usr/bin/pareto" && /usr/bin/pareto --version
dpkg -L pareto | grep -q "assets/samples/tinystories/tinystories-valid-excerpt.txt"
grep -q "MimeType=.*application/x-gguf" /usr/share/applications/Pareto.desktop && grep -q "^Exec=pareto-app %f" /usr/share/applications/Pareto.desktop
xvfb-run -a -s "-screen 0 1400x900x24" env PARETO_APP=/usr/bin/pareto-app \
  bash -c 'cd ui && node --test --test-reporter=spec --test-concurrency=1 e2e-installed/' 2>&1 | tee /tmp/pareto-installed.log
ok "installed $(basename "$deb"): $(grep -E "^ℹ (pass|fail)" /tmp/pareto-installed.log | tr '\n' ' ')"
ls -1 target/screenshots/

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "studio tests: all passed"
