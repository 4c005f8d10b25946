#!/usr/bin/env bash
# Benchmark of `pareto cache` (BENCHMARKS.md, "Semantic cache estimator"): a 100,000-request log
# drawn with Zipf popularity (s = 1.0) from the distinct sentences of the bundled sample sets
# (TinyStories excerpt, SST-2 dev, STS-B dev), spread over 30 days with three tenants; replayed with
# the default thresholds, two capacities, no TTL and 1 day, never and weekly updates.
# Usage: scripts/bench-cache.sh [REQUESTS]   (needs a release build: cargo build --release -p pareto-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/log.tsv" <<'PY'
import random, re, sys
n, out = int(sys.argv[1]), sys.argv[2]
random.seed(20261206)
sents = []
text = open("assets/samples/tinystories/tinystories-valid-excerpt.txt").read()
sents += [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", text) if 3 <= len(s.split()) <= 40]
sents += [l.split("\t")[0] for l in open("assets/samples/sst2/dev.tsv").read().splitlines()[1:]]
for l in open("assets/samples/stsb/sts-dev.csv"):
    f = l.rstrip("\n").split("\t")
    sents += f[5:7]
seen, uniq = set(), []
for s in sents:
    k = " ".join(s.lower().split())
    if k not in seen:
        seen.add(k); uniq.append(s)
random.shuffle(uniq)
weights = [1.0 / (r + 1) for r in range(len(uniq))]
t = 1767225600
step = 30 * 86400 / n
with open(out, "w") as f:
    f.write("timestamp\ttenant\tquery\tinput_tokens\toutput_tokens\n")
    for s in random.choices(uniq, weights, k=n):
        t += random.expovariate(1.0 / step)
        tenant = random.choices(["search", "support", "ads"], [5, 3, 2])[0]
        f.write(f"{t:.3f}\t{tenant}\t{s}\t{len(s.split()) + 20}\t{random.randint(40, 400)}\n")
print(f"{n} requests over {len(uniq)} distinct sentences", file=sys.stderr)
PY
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; SIMD: $(grep -o -w -E 'avx2|avx512f|avx512bw|avx512vl|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
for search in auto hnsw; do
  echo "== --search $search"
  /usr/bin/time -f "wall %e s, max RSS %M KiB" ./target/release/pareto cache "$work/log.tsv" --search "$search" \
    --capacity 1000,100000 --ttl none,1d --updates never,weekly -q --out "$work/est-$search.json"
done
python3 - "$work" <<'PY'
import json, sys
a = json.load(open(sys.argv[1] + "/est-auto.json")); b = json.load(open(sys.argv[1] + "/est-hnsw.json"))
for x, y in zip(a["rows"], b["rows"]):
    d = abs(x["semantic_hit_rate"] - y["semantic_hit_rate"]) * 100
    if d > 0.05: print("differs", x["threshold"], x["capacity"], x["ttl_seconds"], x["updates"], f"{d:.3f} pp")
print("max |semantic rate auto − hnsw| =", max(abs(x["semantic_hit_rate"] - y["semantic_hit_rate"]) * 100 for x, y in zip(a["rows"], b["rows"])), "pp")
PY
