#!/usr/bin/env bash
# Bring up a single-node Slurm cluster (Debian's slurm-wlm 22.05 + munge) without systemd, for the
# tests that submit real jobs. Idempotent: when the cluster is already up it only checks it.
# One node named after `hostname -s` (address 127.0.0.1), CPUs = nproc, one partition `debug`.
# Daemons run as root; logs in /var/log/slurm/, state in /var/spool/slurmctld and /var/spool/slurmd.
# Stop it again with .ci/slurm-down.sh.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
NODE="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
# A bit below MemTotal: slurmd drains the node if it finds less memory than RealMemory.
REAL_MEM=$(( MEM_MB - MEM_MB / 20 ))
if [ "$REAL_MEM" -lt 1 ]; then REAL_MEM=1; fi

log() { echo "slurm-up: $*" >&2; }

dump_logs() {
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
    if $SUDO test -f "$f"; then
      echo "----- tail of $f -----" >&2
      $SUDO tail -n 30 "$f" >&2 || true
    fi
  done
}

die() {
  log "ERROR: $*"
  dump_logs
  exit 1
}

# Is the daemon whose pid file is $1 alive?
alive() {
  local pid
  pid="$($SUDO cat "$1" 2>/dev/null || true)"
  [ -n "$pid" ] && $SUDO kill -0 "$pid" 2>/dev/null
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true; }

# --- 1. packages ---------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
   ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  log "installing slurmctld slurmd slurm-client munge"
  pkgs=(slurmctld slurmd slurm-client munge)
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
fi

# --- 2. munge ------------------------------------------------------------------------------------
if ! $SUDO test -s /etc/munge/munge.key; then
  log "creating /etc/munge/munge.key"
  $SUDO install -d -o munge -g munge -m 0700 /etc/munge
  $SUDO mungekey --create --keyfile=/etc/munge/munge.key --force
  $SUDO chown munge:munge /etc/munge/munge.key
  $SUDO chmod 0600 /etc/munge/munge.key
fi
$SUDO install -d -o munge -g munge -m 0755 /run/munge
$SUDO install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  if alive /run/munge/munged.pid; then
    die "munged is running but munge -n | unmunge fails"
  fi
  log "starting munged"
  $SUDO rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
  $SUDO runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  munge -n | unmunge >/dev/null || die "munged does not answer (munge -n | unmunge)"
fi

# --- 3. slurm.conf -------------------------------------------------------------------------------
$SUDO install -d -m 0755 /etc/slurm "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
tmpconf="$(mktemp)"
trap 'rm -f "$tmpconf"' EXIT
cat >"$tmpconf" <<EOF
# Written by .ci/slurm-up.sh (single-node CI cluster); rewritten on every run.
ClusterName=ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Keep finished jobs (array tasks included) visible to scontrol/squeue for a day.
MinJobAge=86400
MaxJobCount=100000
MaxArraySize=10001
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No accounting daemon (slurmdbd): plain sacct fails with "Slurm accounting storage is disabled".
AccountingStorageType=accounting_storage/none
# One line per finished job (array task) with JobState/ExitCode/ArrayJobId/ArrayTaskId, for
# debugging; \`sacct -c\` reads it but only knows raw job ids, not array tasks.
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGDIR}/jobcomp.log
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
conf_changed=0
if ! $SUDO cmp -s "$tmpconf" "$CONF"; then
  $SUDO install -m 0644 "$tmpconf" "$CONF"
  conf_changed=1
fi

# --- 4. daemons ----------------------------------------------------------------------------------
if [ "$conf_changed" = 1 ] && { alive /run/slurmctld.pid || alive /run/slurmd.pid; }; then
  log "slurm.conf changed: restarting the daemons"
  for pf in /run/slurmd.pid /run/slurmctld.pid; do
    if alive "$pf"; then $SUDO kill "$($SUDO cat "$pf")"; fi
  done
  for _ in $(seq 1 50); do
    if ! alive /run/slurmd.pid && ! alive /run/slurmctld.pid; then break; fi
    sleep 0.2
  done
fi
if ! alive /run/slurmctld.pid; then
  log "starting slurmctld"
  $SUDO /usr/sbin/slurmctld || die "slurmctld failed to start"
fi
if ! alive /run/slurmd.pid; then
  log "starting slurmd"
  $SUDO /usr/sbin/slurmd || die "slurmd failed to start"
fi

deadline=$(( $(date +%s) + 60 ))
state=""
while :; do
  state="$(node_state)"
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | drained* | fail*)
      $SUDO scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    sinfo -N -l >&2 || true
    scontrol show node "$NODE" >&2 || true
    die "node $NODE did not become idle within 60 s (state: '${state:-no answer from slurmctld}')"
  fi
  sleep 1
done
log "up: node $NODE is $state (partition debug, $CPUS CPUs, RealMemory=$REAL_MEM MB)"
