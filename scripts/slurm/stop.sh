#!/usr/bin/env bash
# Stop the cluster that scripts/slurm/start.sh started, by the pid files in its folder (never by process name).
# Safe to run when nothing runs. Keeps the folder (database, logs); `rm -rf .slurm` forgets everything.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE=${SLURM_BASE:-$ROOT/.slurm}
export SLURM_CONF=$BASE/slurm.conf

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {  # stop NAME: SIGTERM the pid in NAME.pid, wait up to 15 s, then SIGKILL
  local f=$BASE/$1.pid
  alive "$f" || { rm -f "$f"; return 0; }
  local pid; pid=$(cat "$f")
  kill "$pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$f"
}

[[ -d $BASE ]] || exit 0
if alive "$BASE/slurmctld.pid"; then scontrol shutdown >/dev/null 2>&1; fi  # stops slurmctld and slurmd
stop slurmd
stop slurmctld
stop slurmdbd
if alive "$BASE/mariadb.pid"; then
  mariadb-admin --no-defaults --socket="$BASE/db/mysqld.sock" -uroot shutdown >/dev/null 2>&1
fi
stop mariadb
stop munged  # only when start.sh started it (then it copied munged's pid file here)
rm -f "$BASE/started"
echo "slurm: stopped"
