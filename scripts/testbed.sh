#!/usr/bin/env bash
# The computenet test bed: two independent Slurm clusters on this machine, as two sites.
#
#   scripts/testbed.sh up            start both (a running one is left as it is), wait until
#                                    both report idle, write <base>/testbed.toml
#   scripts/testbed.sh down [SITE]   stop both (or one): cancel its jobs, shut its daemons down
#   scripts/testbed.sh kill SITE     kill one site's daemons and its jobs' processes with
#                                    SIGKILL, as if the site lost power (`up` brings it back)
#   scripts/testbed.sh status        say which sites run, their conf and their queue
#
# Site A is cluster `sitea` (ports 7817/7818), site B `siteb` (7917/7918); each has its own
# directory, state, ClusterName, fake GPUs (GRES on plain files), AuthType=auth/none (no
# munge; Slurm 22.05 as packaged by Debian) and a job-completion file, so a finished job's
# state stays known after MinJobAge. Needs root (slurmd runs jobs as their users) and
# `apt-get install slurm-wlm`.
#
# Settings (environment):
#   COMPUTENET_TESTBED            base directory            (default /tmp/computenet-testbed)
#   COMPUTENET_TESTBED_PORT_A     site A slurmctld port; slurmd uses the next one  (7817)
#   COMPUTENET_TESTBED_PORT_B     site B slurmctld port; slurmd uses the next one  (7917)
#   COMPUTENET_TESTBED_GPUS       fake H100s per site                              (4)
#   COMPUTENET_TESTBED_CPUS       CPUs each node declares (jobs take one each)     (32)
#   COMPUTENET_TESTBED_MIN_JOB_AGE  seconds Slurm keeps a finished job in memory   (300)
#   COMPUTENET_TESTBED_ACCOUNTING  1: also run accounting (a private MariaDB and one
#                                  slurmdbd both clusters report to), so `sacct` works;
#                                  needs `apt-get install mariadb-server slurmdbd`      (0)
#   COMPUTENET_TESTBED_PORT_DB     that MariaDB's port; slurmdbd uses the next one  (7819)
set -euo pipefail

BASE=${COMPUTENET_TESTBED:-/tmp/computenet-testbed}
PORT_A=${COMPUTENET_TESTBED_PORT_A:-7817}
PORT_B=${COMPUTENET_TESTBED_PORT_B:-7917}
GPUS=${COMPUTENET_TESTBED_GPUS:-4}
CPUS=${COMPUTENET_TESTBED_CPUS:-32}
MIN_JOB_AGE=${COMPUTENET_TESTBED_MIN_JOB_AGE:-300}
ACCOUNTING=${COMPUTENET_TESTBED_ACCOUNTING:-0}
PORT_DB=${COMPUTENET_TESTBED_PORT_DB:-7819}
ACCT=$BASE/accounting
SITES=(sitea siteb)

die() { echo "testbed: $*" >&2; exit 1; }

port_of() { case $1 in sitea) echo "$PORT_A" ;; siteb) echo "$PORT_B" ;; *) die "unknown site '$1'; use one of: ${SITES[*]}" ;; esac; }
node_of() { case $1 in sitea) echo a1 ;; siteb) echo b1 ;; esac; }
dir_of() { echo "$BASE/$1"; }
conf_of() { echo "$BASE/$1/slurm.conf"; }

need_slurm() {
  for tool in slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found. Fix: apt-get install slurm-wlm"
  done
  [ "$(id -u)" = 0 ] || die "run as root (slurmd starts jobs as their users)"
}

# The pid in a pid file, if that process is alive.
live_pid() {
  local file=$1 pid
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_conf() {
  local site=$1 d port node last
  d=$(dir_of "$site"); port=$(port_of "$site"); node=$(node_of "$site")
  last=$((GPUS - 1))
  mkdir -p "$d/state" "$d/spool" "$d/log" "$d/dev" "$d/jobs"
  for i in $(seq 0 "$last"); do : >"$d/dev/nvidia$i"; done
  cat >"$d/slurm.conf" <<CONF
# computenet test bed, site $site (written by scripts/testbed.sh)
ClusterName=$site
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
# Debian's Slurm 22.05 ships auth/none: no munge needed on a test bed. Later Slurm drops it.
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd-%n.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The node declares more CPUs than the machine has, so fake GPUs, not cores, limit a site.
SlurmdParameters=config_overrides
ReturnToService=2
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
$(accounting_conf)
JobAcctGatherType=jobacct_gather/none
MinJobAge=$MIN_JOB_AGE
# Start a batch job as soon as it is scheduled instead of batching launches (default 3 s):
# submit to start was about 0.7 s instead of 1.7 s for a lone job, measured here.
SchedulerParameters=batch_sched_delay=0
KillWait=5
# Clients give up on a dead controller after about MessageTimeout - 1 s (9 s at the default
# 10, measured), so a dead site is noticed sooner.
MessageTimeout=5
GresTypes=gpu
NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=4000 Gres=gpu:h100:$GPUS State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  echo "Name=gpu Type=h100 File=$d/dev/nvidia[0-$last]" >"$d/gres.conf"
}

accounting_conf() {
  if [ "$ACCOUNTING" = 1 ]; then
    printf 'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\nAccountingStoragePort=%s\n' $((PORT_DB + 1))
  else
    echo "AccountingStorageType=accounting_storage/none"
  fi
}

# Accounting: a private MariaDB (no grant tables: it listens on 127.0.0.1 only and holds
# nothing but this test bed's records) and one slurmdbd. slurmdbd reads the slurmdbd.conf
# beside $SLURM_CONF, and refuses one that others can read.
start_accounting() {
  local i
  if live_pid "$ACCT/slurmdbd.pid" >/dev/null; then
    echo "accounting: already up"
    return
  fi
  for tool in mariadb-install-db mariadbd slurmdbd sacctmgr; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found. Fix: apt-get install mariadb-server slurmdbd"
  done
  mkdir -p "$ACCT"
  if [ ! -d "$ACCT/db/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$ACCT/db" --user=root --skip-test-db \
      >"$ACCT/install.log" 2>&1 || die "mariadb-install-db failed; see $ACCT/install.log"
  fi
  if ! live_pid "$ACCT/mariadb.pid" >/dev/null; then
    COMPUTENET_TESTBED_SITE="$ACCT" setsid mariadbd --no-defaults --datadir="$ACCT/db" --user=root \
      --port="$PORT_DB" --bind-address=127.0.0.1 --socket="$ACCT/mariadb.sock" \
      --pid-file="$ACCT/mariadb.pid" --log-error="$ACCT/mariadb.log" --skip-grant-tables \
      --innodb-buffer-pool-size=32M </dev/null >/dev/null 2>&1 &
  fi
  for i in $(seq 1 100); do
    mariadb-admin --no-defaults -h 127.0.0.1 -P "$PORT_DB" -u root ping >/dev/null 2>&1 && break
    [ "$i" = 100 ] && die "MariaDB did not answer within 20 s; see $ACCT/mariadb.log"
    sleep 0.2
  done
  cat >"$ACCT/slurmdbd.conf" <<CONF
AuthType=auth/none
DbdHost=localhost
DbdPort=$((PORT_DB + 1))
SlurmUser=root
PidFile=$ACCT/slurmdbd.pid
LogFile=$ACCT/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$PORT_DB
StorageUser=root
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$ACCT/slurmdbd.conf"
  # What sacctmgr needs to find slurmdbd (and where slurmdbd looks for slurmdbd.conf).
  printf 'ClusterName=sitea\nSlurmctldHost=localhost\nAuthType=auth/none\n%s\n' \
    "$(accounting_conf)" >"$ACCT/slurm.conf"
  COMPUTENET_TESTBED_SITE="$ACCT" SLURM_CONF="$ACCT/slurm.conf" slurmdbd
  for i in $(seq 1 100); do
    SLURM_CONF=$ACCT/slurm.conf sacctmgr -n show cluster >/dev/null 2>&1 && break
    [ "$i" = 100 ] && die "slurmdbd did not answer within 20 s; see $ACCT/slurmdbd.log"
    sleep 0.2
  done
  SLURM_CONF=$ACCT/slurm.conf sacctmgr -i add cluster "${SITES[@]}" >/dev/null 2>&1 || true
  echo "accounting: started (slurmdbd port $((PORT_DB + 1)))"
}

stop_accounting() {
  local pid f
  for f in "$ACCT/slurmdbd.pid" "$ACCT/mariadb.pid"; do
    pid=$(live_pid "$f" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "accounting: stopped $(basename "$f" .pid)"
  done
}

is_up() {
  local d; d=$(dir_of "$1")
  live_pid "$d/slurmctld.pid" >/dev/null && live_pid "$d/slurmd-$(node_of "$1").pid" >/dev/null
}

start_site() {
  local site=$1 d conf node
  d=$(dir_of "$site"); conf=$(conf_of "$site"); node=$(node_of "$site")
  if is_up "$site"; then
    echo "$site: already up ($conf)"
    return
  fi
  stop_pids "$site" KILL  # a half-running site (one daemon died) starts afresh
  write_conf "$site"
  # -c: start from empty state, so a test bed never inherits jobs from an earlier run.
  # The marker variable lets `kill` find this site's processes, jobs included.
  COMPUTENET_TESTBED_SITE="$d" slurmctld -f "$conf" -c
  COMPUTENET_TESTBED_SITE="$d" slurmd -f "$conf" -N "$node"
  echo "$site: started ($conf)"
}

wait_idle() {
  local site=$1 conf state i
  conf=$(conf_of "$site")
  # 60 s: on a busy 2-core machine slurmd can take well over 10 s to register.
  for i in $(seq 1 600); do
    state=$(SLURM_CONF=$conf sinfo -h -o %T 2>/dev/null || true)
    case $state in idle | mixed | allocated) return 0 ;; esac
    sleep 0.1
  done
  die "$site did not become idle within 60 s (state '${state:-none}'); see $(dir_of "$site")/log/"
}

# Kill a site's daemons by their pid files, then every process carrying its marker or its
# SLURM_CONF: each job's slurmstepd and the job's own processes, which would otherwise run
# on after the daemons died (a real site that loses power loses its jobs too).
stop_pids() {
  local site=$1 sig=$2 d pid p
  d=$(dir_of "$site")
  for f in "$d"/slurmctld.pid "$d"/slurmd-*.pid; do
    pid=$(live_pid "$f" 2>/dev/null) && kill "-$sig" "$pid" 2>/dev/null || true
  done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    # Jobs carry their cluster's SLURM_CONF (slurmstepd sets it), the daemons the marker.
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null \
      | grep -qxF -e "COMPUTENET_TESTBED_SITE=$d" -e "SLURM_CONF=$d/slurm.conf"; then
      kill "-$sig" "$pid" 2>/dev/null || true
    fi
  done
}

down_site() {
  local site=$1 conf d i
  conf=$(conf_of "$site"); d=$(dir_of "$site")
  if ! live_pid "$d/slurmctld.pid" >/dev/null && ! ls "$d"/slurmd-*.pid >/dev/null 2>&1; then
    echo "$site: not running"
    return
  fi
  if live_pid "$d/slurmctld.pid" >/dev/null; then
    SLURM_CONF=$conf scancel --quiet --full --partition=main 2>/dev/null || true
    SLURM_CONF=$conf scontrol shutdown >/dev/null 2>&1 || true
    for i in $(seq 1 50); do is_running_any "$site" || break; sleep 0.1; done
  fi
  stop_pids "$site" KILL
  rm -f "$d"/slurmctld.pid "$d"/slurmd-*.pid
  echo "$site: stopped"
}

is_running_any() {
  local d; d=$(dir_of "$1")
  live_pid "$d/slurmctld.pid" >/dev/null && return 0
  for f in "$d"/slurmd-*.pid; do live_pid "$f" >/dev/null && return 0; done
  return 1
}

write_network() {
  cat >"$BASE/testbed.toml" <<TOML
# computenet test bed: two Slurm clusters on this machine (written by scripts/testbed.sh)
name = "testbed"
description = "Two local Slurm clusters (sitea, siteb) with $GPUS fake H100 each"

[defaults]
jurisdiction = "mainland"
role = "east"
pue = 1.3
price = { kind = "constant", value = 0.6 }
carbon = { kind = "constant", value = 500.0 }

[[sites]]
id = "sitea"
name = "Test bed site A"
latitude = 31.2
longitude = 121.5
pools = [{ accelerator = "H100", count = $GPUS }]
executor = { kind = "slurm", conf = "$(conf_of sitea)", partition = "main" }

[[sites]]
id = "siteb"
name = "Test bed site B"
latitude = 30.6
longitude = 114.3
pools = [{ accelerator = "H100", count = $GPUS }]
executor = { kind = "slurm", conf = "$(conf_of siteb)", partition = "main" }
TOML
}

status() {
  local site conf
  for site in "${SITES[@]}"; do
    conf=$(conf_of "$site")
    if is_up "$site"; then
      echo "$site: up   SLURM_CONF=$conf  nodes: $(SLURM_CONF=$conf sinfo -h -o '%n %T %G' | tr '\n' ' ')"
      SLURM_CONF=$conf squeue -h -o '  job %i %j %T %R' || true
    else
      echo "$site: down ($conf)"
    fi
  done
}

sites_arg() { if [ $# -gt 0 ]; then port_of "$1" >/dev/null; echo "$1"; else echo "${SITES[@]}"; fi; }

cmd=${1:-}
shift || true
case $cmd in
  up)
    need_slurm
    mkdir -p "$BASE"
    if [ "$ACCOUNTING" = 1 ]; then
      start_accounting
    fi
    for site in $(sites_arg "$@"); do start_site "$site"; done
    for site in $(sites_arg "$@"); do wait_idle "$site"; done
    write_network
    echo
    echo "Both sites are idle. Each Slurm client picks its cluster from SLURM_CONF:"
    for site in "${SITES[@]}"; do echo "  SLURM_CONF=$(conf_of "$site") squeue   # $site"; done
    echo
    echo "Network file: $BASE/testbed.toml (each site's executor, as written there):"
    grep '^executor' "$BASE/testbed.toml" | sed 's/^/  /'
    ;;
  down)
    for site in $(sites_arg "$@"); do down_site "$site"; done
    [ $# -gt 0 ] || stop_accounting
    ;;
  kill)
    [ $# -eq 1 ] || die "usage: $0 kill SITE (one of: ${SITES[*]})"
    port_of "$1" >/dev/null
    stop_pids "$1" KILL
    echo "$1: killed (daemons and jobs)"
    ;;
  status) status ;;
  *) die "usage: $0 up [SITE] | down [SITE] | kill SITE | status" ;;
esac
