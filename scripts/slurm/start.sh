#!/usr/bin/env bash
# Start a private single-node SLURM cluster on this machine: munge, MariaDB, slurmdbd (accounting, so that sacct and
# submitit see job states), slurmctld and slurmd. Everything lives under one folder (default: .slurm/ in the repo);
# every daemon leaves a pid file there, and scripts/slurm/stop.sh stops them by those pid files.
# Needs root (the daemons run as root); installs the Debian packages when they are missing.
# Afterwards:  source .slurm/env   (sets SLURM_CONF for sbatch, squeue, sacct, scontrol)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE=${SLURM_BASE:-$ROOT/.slurm}
HOST=$(hostname -s)
NCPU=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS; the node does not
# The node as the machine is: its memory (the cgroup's limit when lower, as in a container) less a margin for the
# daemons and the system (a tenth, at least 512 MB), so that a job asking for what the node declares can run.
mem_mb() {
  local total limit
  total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max)
  [[ $limit =~ ^[0-9]+$ ]] && ((limit / 1048576 < total)) && total=$((limit / 1048576))
  local margin=$((total / 10 > 512 ? total / 10 : 512))
  echo $((total - margin))
}
MEM_MB=${SLURM_MEM_MB:-$(mem_mb)}
DB_PORT=${SLURM_DB_PORT:-3307}
export SLURM_CONF=$BASE/slurm.conf

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until the command succeeds
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "slurm: $what did not come up within ${t}s (logs: $BASE/*.log)" >&2; return 1
}

if [[ $(id -u) != 0 ]]; then echo "slurm: start.sh must run as root (the daemons run as root)" >&2; exit 1; fi
if alive "$BASE/slurmctld.pid" && alive "$BASE/slurmd.pid"; then echo "slurm: already running ($BASE)"; exit 0; fi
# one cluster per machine: its ports are fixed (6817-6819, $DB_PORT)
for port in 6817 6818 6819 "$DB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "slurm: port $port is in use: another cluster runs on this machine; stop it first (its scripts/slurm/stop.sh)" >&2
    exit 1
  fi
done

packages=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "slurm: installing ${missing[*]}"
  apt-get update -qq
  # post-install scripts try to start the services and fail without systemd: harmless
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null || true
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || { echo "slurm: could not install $p" >&2; exit 1; }; done
fi

mkdir -p "$BASE"/{state,spool,db}
: >"$BASE/started"  # stop.sh stops only what this folder started

# 1. munge (authentication). A munged that already runs on the machine is reused and left alone by stop.sh.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; chown munge:munge /etc/munge/munge.key; }
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 munged bash -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$BASE/munged.pid"
fi

# 2. MariaDB for slurmdbd, private datadir, socket and port
SOCK=$BASE/db/mysqld.sock
if ! alive "$BASE/mariadb.pid"; then
  if [[ ! -d $BASE/db/data/mysql ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$BASE/db/data" --auth-root-authentication-method=socket >"$BASE/mariadb-install.log" 2>&1
  fi
  setsid mariadbd --no-defaults --user=root --datadir="$BASE/db/data" --socket="$SOCK" --port="$DB_PORT" \
    --bind-address=127.0.0.1 --pid-file="$BASE/mariadb.pid" --log-error="$BASE/mariadb.log" </dev/null >/dev/null 2>&1 &
  wait_for 30 MariaDB mariadb --no-defaults --socket="$SOCK" -uroot -e 'select 1'
  mariadb --no-defaults --socket="$SOCK" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
fi

# 3. slurm.conf, read by every daemon and client through $SLURM_CONF
cat >"$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# a request no node can hold is refused at sbatch (one line from the launcher), not left pending for ever
EnforcePartLimits=ALL
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldLogFile=$BASE/slurmctld.log
SlurmdLogFile=$BASE/slurmd.log
InactiveLimit=0
KillWait=5
# a step SIGKILLed on a loaded 2-core machine can take longer than the 60 s default to end: SLURM then drains the
# node ("Kill task failed") and no later job starts (seen under make test-stress)
UnkillableStepTimeout=300
MinJobAge=300
Waittime=0
# a test cluster: requeued jobs may start again after 5 s (default 120), and the scheduler looks every second
AuthInfo=cred_expire=5
SchedulerParameters=sched_interval=1,bf_interval=1
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# 4. slurmdbd (accounting: sacct); it reads slurmdbd.conf from the folder of $SLURM_CONF
cat >"$BASE/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$BASE/slurmdbd.pid
LogFile=$BASE/slurmdbd.log
CONF
chmod 600 "$BASE/slurmdbd.conf"
if ! alive "$BASE/slurmdbd.pid"; then
  slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
  wait_for 30 slurmdbd bash -c "sacctmgr -n list cluster"
fi

# 5. slurmctld and slurmd
sacctmgr -i add cluster ci >/dev/null 2>&1 || true
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
wait_for 30 "an idle node" bash -c '[[ $(sinfo -h -o %T) == idle ]]'
echo "export SLURM_CONF=$SLURM_CONF" >"$BASE/env"
echo "slurm: up ($(sinfo -h -o '%P %D node(s), %c CPUs, %m MB a node, %T'); source $BASE/env)"
