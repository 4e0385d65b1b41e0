#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by .ci/slurm-up.sh (slurmd, slurmctld, munged).
# State (jobs) stays in /var/spool/slurmctld; delete it by hand for a clean start.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

stop() { # name pidfile
  local pid
  pid="$($SUDO cat "$2" 2>/dev/null || true)"
  if [ -z "$pid" ] || ! $SUDO kill -0 "$pid" 2>/dev/null; then
    echo "slurm-down: $1 not running"
    return 0
  fi
  $SUDO kill "$pid"
  for _ in $(seq 1 50); do
    if ! $SUDO kill -0 "$pid" 2>/dev/null; then
      echo "slurm-down: stopped $1 (pid $pid)"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm-down: $1 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
  $SUDO kill -9 "$pid" 2>/dev/null || true
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
if [ "${1:-}" != "--keep-munge" ]; then
  stop munged /run/munge/munged.pid
fi
