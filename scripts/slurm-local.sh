#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `pareto sweep --executor slurm` and to test it:
#   bash scripts/slurm-local.sh start   # installs munge + Slurm from Debian if missing, starts them
#   bash scripts/slurm-local.sh stop
#   bash scripts/slurm-local.sh status
# Idempotent: start on a running cluster and stop on a stopped one do nothing. The configuration is
# written to /etc/slurm/slurm.conf only when none is there (a real cluster's is never touched) and
# marks itself with a first line this script recognises.
set -euo pipefail

conf=/etc/slurm/slurm.conf
marker="# written by pareto scripts/slurm-local.sh"
state=/var/lib/pareto-slurm
sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  local missing=()
  for cmd in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
    command -v "${cmd%%:*}" > /dev/null || [ -x "/usr/sbin/${cmd%%:*}" ] || missing+=("${cmd#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "slurm-local: installing ${missing[*]}" >&2
  sudo_if apt-get update -qq
  sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

configure() {
  if [ -f "$conf" ] && ! head -1 "$conf" | grep -qF "$marker"; then
    echo "slurm-local: $conf exists and was not written by this script; using it as it is" >&2
    return
  fi
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  # Leave a quarter of the memory to the machine itself; Slurm counts MiB.
  mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.75 }' /proc/meminfo)
  sudo_if mkdir -p /etc/slurm "$state/ctld" "$state/d" /var/log/slurm
  sudo_if tee "$conf" > /dev/null << EOF
$marker
ClusterName=pareto-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Containers and CI machines often have no usable cgroup hierarchy: track processes by /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
# sacct reads the completion log, so finished tasks keep their state without a database.
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
ReturnToService=2
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
# Without a default every job would hold the whole node's memory and run alone.
DefMemPerCPU=$((mem / cpus))
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { pgrep -x "$1" > /dev/null; }

start() {
  install
  configure
  if ! running munged; then
    sudo_if mkdir -p /run/munge /var/log/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || sudo_if /usr/sbin/mungekey --create
    sudo_if chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2> /dev/null || true
    sudo_if runuser -u munge -- /usr/sbin/munged 2> /dev/null || sudo_if /usr/sbin/munged --force
  fi
  running slurmctld || sudo_if /usr/sbin/slurmctld
  running slurmd || sudo_if /usr/sbin/slurmd
  # The node registers within a few seconds; wait until it takes jobs.
  for _ in $(seq 1 60); do
    if sinfo -h -o '%t' 2> /dev/null | grep -Eq '^(idle|mix|alloc)'; then
      echo "slurm-local: up ($(sinfo -h -o '%P %D node(s) %c CPUs %t' | head -1))" >&2
      return
    fi
    # A node left down by an earlier unclean stop is brought back.
    sudo_if scontrol update nodename="$(hostname -s)" state=resume 2> /dev/null || true
    sleep 1
  done
  echo "slurm-local: the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for d in slurmd slurmctld munged; do
    if running "$d"; then
      sudo_if pkill -x "$d" || true
    fi
  done
  for _ in $(seq 1 20); do
    running slurmd || running slurmctld || break
    sleep 0.5
  done
  echo "slurm-local: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo 2>&1 || exit 1 ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
