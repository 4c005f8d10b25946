#!/usr/bin/env bash
# Benchmark of `pareto sweep --executor slurm` against the local executor on the same machine
# (BENCHMARKS.md, "Sweeps on Slurm"): the same sweep of stories260K (compress, validate, project)
# run locally (1 and 2 at once) and through the one-node cluster of scripts/slurm-local.sh (its
# CPUs decide how many tasks run at once), with squeue polled every 0.2 s and at the default 5 s.
# Per task, Slurm's own submit/start/end times give the queue wait and the run time.
# Usage: scripts/bench-slurm.sh [RECIPES]   (needs: cargo build --release -p pareto-cli; slurm-local.sh start)
set -euo pipefail
cd "$(dirname "$0")/.."
recipes="${1:-w8,w4-g32,gguf-q4_0,gguf-q8_0,w4-g128,fp8}"
bin="$PWD/target/release/pareto"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="$PWD/models/stories260K"
n=$(tr ',' '\n' <<< "$recipes" | wc -l)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f)$' | xargs)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) ($flags); $(nproc) cores; $(sinfo -h -o '%c CPUs on the Slurm node')"
run() {
  local name=$1; shift
  local s e
  s=$(date +%s.%N)
  "$bin" --quiet sweep "$model" --recipes "$recipes" --out "$work/$name" "$@" > /dev/null
  e=$(date +%s.%N)
  printf '%-28s %6.2f s for %d variants\n' "$name" "$(echo "$e - $s" | bc)" "$n"
}
for rep in 1 2; do
  run "local-p1-$rep" --parallel 1
  run "local-p2-$rep" --parallel 2
  run "slurm-poll0.2-$rep" --executor slurm --poll 0.2
  run "slurm-poll5-$rep" --executor slurm
done
# Queue wait (submit → start) and run time per array task, from the controller (second resolution).
for f in "$work"/slurm-poll0.2-*/.pareto-cluster/submissions.jsonl; do
  job=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["array_job"])' "$f")
  scontrol -o show job "$job" | python3 -c '
import sys, datetime as d
for line in sys.stdin:
    f = dict(w.split("=", 1) for w in line.split() if "=" in w)
    sub, start, end = (d.datetime.fromisoformat(f[k]) for k in ("SubmitTime", "StartTime", "EndTime"))
    print("  task %s: waited %d s, ran %d s" % (f["JobId"], (start - sub).seconds, (end - start).seconds))
'
done
