#!/usr/bin/env bash
# Tear down the cluster started by up.sh (r3bench's test cluster, adapted from ../shared/slurm):
# cancel jobs, stop slurmd, slurmctld, slurmdbd, mariadbd, munged -- each by the PID in its pid file,
# checked against its process name. Idempotent.
#   down.sh          stop daemons, keep state (job ids, accounting DB, munge key)
#   down.sh --purge  also delete all generated state/config/logs under $SLURM_BASE
#                    (keeps *.sh, venv/ and anything else not created by up.sh)
set -uo pipefail
BASE=${SLURM_BASE:-${TMPDIR:-/tmp}/r3bench-slurm}
export SLURM_CONF=$BASE/etc/slurm.conf
export PATH=$PATH:/usr/sbin:/sbin
log() { echo "[slurm-down] $*" >&2; }

pid_of() {  # pid_of PIDFILE COMM -> prints pid if alive, not a zombie, and comm matches
  local pf=$1 comm=$2 pid st
  [ -s "$pf" ] || return 1
  pid=$(cat "$pf" 2>/dev/null) || return 1
  [ "$(cat /proc/$pid/comm 2>/dev/null)" = "$comm" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1
  echo "$pid"
}
stop() {  # stop PIDFILE COMM
  local pf=$1 comm=$2 pid i
  pid=$(pid_of "$pf" "$comm") || { rm -f "$pf"; return 0; }
  log "stopping $comm (pid $pid)"
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do pid_of "$pf" "$comm" >/dev/null || break; sleep 0.2; done
  if pid_of "$pf" "$comm" >/dev/null; then log "$comm did not exit, SIGKILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.5; fi
  rm -f "$pf"
}

# 1. cancel all jobs while slurmctld/slurmd are still up, so no slurmstepd/job process outlives them
if [ -f "$SLURM_CONF" ] && pid_of "$BASE/run/slurmctld.pid" slurmctld >/dev/null \
   && pid_of "$BASE/run/slurmd.pid" slurmd >/dev/null; then
  if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    log "cancelling jobs"
    scancel --full $(squeue -h -o %i 2>/dev/null | sed 's/_.*//' | sort -u) 2>/dev/null || true
    for i in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi

# 2. daemons, compute side first
stop "$BASE/run/slurmd.pid" slurmd
stop "$BASE/run/slurmctld.pid" slurmctld
stop "$BASE/run/slurmdbd.pid" slurmdbd
stop "$BASE/mysql/mysqld.pid" mariadbd
stop "$BASE/munge/munged.pid" munged

if [ "${1:-}" = "--purge" ]; then
  log "purging state under $BASE"
  rm -rf "$BASE"/{etc,state,spool,log,run,munge,mysql} "$BASE/env.sh"
fi
log "down"
