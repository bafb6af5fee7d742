#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster (munge + [mariadb + slurmdbd] + slurmctld + slurmd)
# on this machine, as root, with every file under $SLURM_BASE: r3bench's test cluster
# (tests/runners/test_slurm.py), adapted from the recipe in ../shared/slurm. Idempotent:
# re-running it only starts what is not running. Debian 12 packages (installed by
# .ci/slurm-setup), no systemd, no cgroups.
#   SLURM_BASE=${TMPDIR:-/tmp}/r3bench-slurm   where config/state/logs live
#   SLURMCTLD_PORT=6817 SLURMD_PORT=6818 SLURMDBD_PORT=6819 SLURM_DB_PORT=13306
#                               TCP ports (pick free ones to run beside another cluster)
#   SLURM_NODE_CPUS=8           optional: advertise more CPUs than the machine has (slurmd
#                               config_overrides), so more 1-CPU jobs run at once on 2 cores
#   SLURM_ACCOUNTING=1          1: slurmdbd+MariaDB so `sacct` works (submitit reads job states
#                               with sacct); 0: no accounting (lighter, but job.state stays UNKNOWN)
# Afterwards:  export SLURM_CONF=$SLURM_BASE/etc/slurm.conf   (or: source $SLURM_BASE/env.sh)
set -euo pipefail

BASE=${SLURM_BASE:-${TMPDIR:-/tmp}/r3bench-slurm}
ACCOUNTING=${SLURM_ACCOUNTING:-1}
PARTITION=${SLURM_PARTITION_NAME:-debug}
CLUSTER=${SLURM_CLUSTER_NAME:-localcluster}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
DBD_PORT=${SLURMDBD_PORT:-6819}
DB_PORT=${SLURM_DB_PORT:-13306}
export SLURM_CONF=$BASE/etc/slurm.conf

log() { echo "[slurm-up] $*" >&2; }

# ---- 1. packages (installed by .ci/slurm-setup; this script installs nothing) ------------------
BINS=(slurmctld slurmd sbatch sinfo scontrol munged munge unmunge)
if [ "$ACCOUNTING" = 1 ]; then BINS+=(slurmdbd sacctmgr mariadbd mariadb-install-db mariadb); fi
export PATH=$PATH:/usr/sbin:/sbin
for b in "${BINS[@]}"; do
  command -v "$b" >/dev/null 2>&1 || { log "missing $b: install the packages with .ci/slurm-setup (as root)"; exit 3; }
done
if [ "$(id -u)" != 0 ]; then log "must run as root (SlurmUser=root, munge key ownership)"; exit 3; fi

# ---- helpers ---------------------------------------------------------------------------------
alive() {  # alive PIDFILE COMM  -> pid alive (not zombie) and its comm matches
  local pf=$1 comm=$2 pid st
  [ -s "$pf" ] || return 1
  pid=$(cat "$pf" 2>/dev/null) || return 1
  [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat /proc/$pid/comm 2>/dev/null)" = "$comm" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}
wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.2
  done
}

mkdir -p "$BASE"/{etc,state,spool,log,run,munge}
chmod 755 "$BASE" "$BASE/munge"   # munged insists: socket dir must be executable by all

# ---- 2. config -------------------------------------------------------------------------------
NODE=$(hostname -s)                      # slurmd/slurmctld match themselves by `hostname -s`
# hardware line as slurmd sees it; advertise 90% of RAM so the node never registers as INVALID
HW=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ ?RealMemory=[0-9]+//')
MEM=$(slurmd -C | head -1 | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')
MEM=$((MEM * 9 / 10))
OVERRIDES=""
if [ -n "${SLURM_NODE_CPUS:-}" ]; then
  HW="CPUs=$SLURM_NODE_CPUS"; OVERRIDES="SlurmdParameters=config_overrides"
fi
MUNGE_SOCK=$BASE/munge/munge.socket.2

if [ "$ACCOUNTING" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# for dbd connections Slurm takes the munge socket from AccountingStoragePass, not AuthInfo
AccountingStoragePass=$MUNGE_SOCK"
else
  ACCT="AccountingStorageType=accounting_storage/none"
fi

cat > "$BASE/etc/slurm.conf.new" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$MUNGE_SOCK,cred_expire=10
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
$ACCT
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# schedule at once on submit/completion (default batch_sched_delay=3 s adds ~3 s to a job);
# bf_interval=1: requeued jobs are started by backfill, which by default runs only every 30 s
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
Waittime=0
$OVERRIDES
NodeName=$NODE NodeAddr=127.0.0.1 $HW RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
mv "$BASE/etc/slurm.conf.new" "$BASE/etc/slurm.conf"
echo "export SLURM_CONF=$BASE/etc/slurm.conf" > "$BASE/env.sh"

# ---- 3. munge --------------------------------------------------------------------------------
if [ ! -s "$BASE/munge/munge.key" ]; then
  dd if=/dev/urandom of="$BASE/munge/munge.key" bs=1024 count=1 status=none
fi
chown root:root "$BASE/munge/munge.key"; chmod 400 "$BASE/munge/munge.key"
if ! alive "$BASE/munge/munged.pid" munged; then
  log "starting munged"
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  munged --socket="$MUNGE_SOCK" --key-file="$BASE/munge/munge.key" \
    --log-file="$BASE/munge/munged.log" --pid-file="$BASE/munge/munged.pid" \
    --seed-file="$BASE/munge/munged.seed" --num-threads=4 </dev/null >/dev/null 2>&1
fi
wait_for 20 munge sh -c "munge -S '$MUNGE_SOCK' -n | unmunge -S '$MUNGE_SOCK'"

# ---- 4. accounting: mariadb + slurmdbd -------------------------------------------------------
if [ "$ACCOUNTING" = 1 ]; then
  DB=$BASE/mysql
  mkdir -p "$DB"
  if [ ! -d "$DB/data/mysql" ]; then
    log "initialising mariadb datadir"
    mariadb-install-db --no-defaults --user=root --datadir="$DB/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$DB/install.log" 2>&1
  fi
  if ! alive "$DB/mysqld.pid" mariadbd; then
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    rm -f "$DB/mysqld.sock"
    setsid mariadbd --no-defaults --user=root --datadir="$DB/data" --socket="$DB/mysqld.sock" \
      --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DB/mysqld.pid" \
      --log-error="$DB/error.log" --innodb-buffer-pool-size=128M --innodb-log-file-size=64M \
      --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  fi
  wait_for 60 mariadb mariadb --no-defaults -S "$DB/mysqld.sock" -u root -e 'SELECT 1'
  mariadb --no-defaults -S "$DB/mysqld.sock" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

  cat > "$BASE/etc/slurmdbd.conf" <<EOF
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$BASE/run/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
DebugLevel=info
EOF
  chmod 600 "$BASE/etc/slurmdbd.conf"   # slurmdbd refuses a world-readable slurmdbd.conf
  if ! alive "$BASE/run/slurmdbd.pid" slurmdbd; then
    log "starting slurmdbd"
    slurmdbd </dev/null >/dev/null 2>&1      # reads slurmdbd.conf next to $SLURM_CONF
  fi
  wait_for 60 slurmdbd sacctmgr -n -P show cluster
  sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

# ---- 5. slurmctld + slurmd -------------------------------------------------------------------
if ! alive "$BASE/run/slurmctld.pid" slurmctld; then
  log "starting slurmctld"
  slurmctld -i </dev/null >/dev/null 2>&1
else
  scontrol reconfigure >/dev/null 2>&1 || true
fi
wait_for 30 slurmctld scontrol ping
if ! alive "$BASE/run/slurmd.pid" slurmd; then
  log "starting slurmd"
  slurmd </dev/null >/dev/null 2>&1
fi
node_ready() { sinfo -h -n "$NODE" -o %T | grep -Eq '^(idle|mixed|allocated|completing)'; }
if ! wait_for 30 "node $NODE" node_ready; then
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  wait_for 30 "node $NODE" node_ready || { sinfo -N -l >&2; tail -20 "$BASE/log/slurmctld.log" >&2; exit 1; }
fi
log "up: $(sinfo -h -o '%P %a %D %T %N' | head -1)  (export SLURM_CONF=$SLURM_CONF)"
