#!/usr/bin/env bash
# Stop the cluster that .ci/slurm/start.sh started: cancel its jobs, then signal each daemon by the
# pid in its own pid file (never by name). Idempotent.
set -u
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
stop() { # name pidfile
  local pid; pid=$(tr -dc 0-9 2>/dev/null < "$2" || true)
  if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -KILL "$pid"
    echo "[ci/slurm/stop] stopped $1 ($pid)"
  fi
  rm -f "$2"
}
command -v scancel >/dev/null && scancel --user="$(id -un)" 2>/dev/null
stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid   # last: the others need it to shut down cleanly
exit 0
