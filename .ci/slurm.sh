#!/usr/bin/env bash
# Single-node SLURM for CI and local testing (Debian/Ubuntu, run as root).
#
#   .ci/slurm.sh start    install slurm-wlm + munge if missing, write config,
#                         start munged/slurmctld/slurmd, wait for node "idle"
#   .ci/slurm.sh stop     stop the three daemons (job state is kept)
#   .ci/slurm.sh status   show daemons, sinfo and squeue; exit 1 if not up
#
# The cluster is named lrstudy-ci (ClusterName: the tests run only against a
# controller that reports it) and has one partition, `ci` (the default), so
# that nothing depends on a partition name. The node is named after
# `hostname -s`, gets the machine's real CPUs/memory
# (from `slurmd -C`) and 2 fake GPUs (character-device stand-ins), so that
# `sbatch --gpus=1` works and 2 GPU jobs run side by side with
# CUDA_VISIBLE_DEVICES=0 and 1. No accounting (no slurmdbd), no cgroups.
#
# Environment knobs: SLURM_CI_TIMEOUT (seconds to wait, default 60),
#                    SLURM_CI_GPUS (fake GPU count, default 2).
set -euo pipefail

ACTION="${1:-start}"
TIMEOUT="${SLURM_CI_TIMEOUT:-60}"
NGPU="${SLURM_CI_GPUS:-2}"
CONF_DIR=/etc/slurm
GPU_DIR=/var/lib/slurm-ci/dev        # fake /dev/nvidia* stand-ins
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_PID="$RUN_DIR/slurmctld.pid"
SLURMD_PID="$RUN_DIR/slurmd.pid"
MUNGE_PID=/run/munge/munged.pid
NODE="$(hostname -s)"
CLUSTER=lrstudy-ci                   # tests/slurm_ci.py recognises the CI cluster by this
PARTITION=ci                         # deliberately not `main`: the profile names no partition
DIAGNOSE=0                           # 1 once daemons start: die() then prints their logs

log() { echo "[slurm.sh] $*"; }
die() {  # die MESSAGE: print it (and the daemons' logs once they were started), exit 1
  echo "[slurm.sh] ERROR: $*" >&2
  (( DIAGNOSE )) && dump_logs
  exit 1
}

[[ $ACTION == status || $(id -u) -eq 0 ]] || die "'$ACTION' must run as root"

# ---------------------------------------------------------------- helpers
pid_alive() {  # pid_alive PIDFILE NAME -> prints the pid if the pidfile's process is NAME
  # Only the pidfile this script's daemons write counts: a daemon of the same name that
  # something else started is never reported, so never stopped.
  local pid=""
  [[ -s "$1" ]] && pid="$(cat "$1" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
     && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]]; then
    echo "$pid"; return 0
  fi
  return 1
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds, or die naming DESCRIPTION
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || die "$what: not after ${secs}s ($*)"
    sleep 0.5
  done
}

dump_logs() {
  echo "----- diagnostics -----" >&2
  for f in /var/log/munge/munged.log "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
    [[ -f "$f" ]] && { echo "===== tail -n 40 $f =====" >&2; tail -n 40 "$f" >&2; }
  done
  echo "===== sinfo =====" >&2; sinfo -N -l >&2 2>&1 || true
  echo "===== scontrol show node =====" >&2; scontrol show node >&2 2>&1 || true
  echo "===== scontrol show slurmd =====" >&2; scontrol show slurmd >&2 2>&1 || true
}

# ---------------------------------------------------------------- install
install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
     && command -v sinfo >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  log "installing slurm-wlm and munge with apt-get (first time only)"
  local t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # do not let package scripts start services (no systemd in containers)
  local prc=/usr/sbin/policy-rc.d added_prc=0
  if [[ ! -e $prc ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; added_prc=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  (( added_prc )) && rm -f "$prc"
  log "apt-get install took $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- munge
start_munge() {
  if pid_alive "$MUNGE_PID" munged >/dev/null && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"; return 0
  fi
  id munge >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin munge
  install -d -m 0700 -o munge -g munge /etc/munge /var/lib/munge
  install -d -m 0755 -o munge -g munge /run/munge
  install -d -m 0700 -o munge -g munge /var/log/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key --force
    else
      create-munge-key -f
    fi
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  # munged refuses to run as root by default; run it as the munge user
  start_daemon "$MUNGE_PID" munged runuser -u munge -- munged --force --pid-file="$MUNGE_PID" \
    --log-file=/var/log/munge/munged.log
  wait_for 10 "munge does not work" bash -c 'munge -n </dev/null | unmunge'
}

# ---------------------------------------------------------------- config
CONFIG_CHANGED=0
write_config() {  # writes $CONF_DIR/{slurm,gres}.conf, sets CONFIG_CHANGED=1 if they changed
  local hw cpus sockets cores threads mem defmem
  hw="$(slurmd -C | head -n1)" || die "slurmd -C failed"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $hw"; }
  cpus="$(get CPUs)"; sockets="$(get SocketsPerBoard)"
  cores="$(get CoresPerSocket)"; threads="$(get ThreadsPerCore)"
  mem="$(get RealMemory)"
  [[ -n $cpus && -n $mem ]] || die "cannot parse 'slurmd -C': $hw"
  mem=$(( mem * 95 / 100 ))            # leave a little headroom for the OS
  defmem=$(( mem / cpus / 2 ))        # jobs without --mem leave room for others
  (( defmem > 2048 )) && defmem=2048

  # fake GPUs: real character devices (regular files are rejected by slurmd;
  # a count-only gres leaves the node INVAL). c 1 3 == /dev/null.
  install -d -m 0755 "$GPU_DIR"
  local i
  for (( i = 0; i < NGPU; i++ )); do
    if [[ ! -c "$GPU_DIR/gpu$i" ]]; then
      rm -f "$GPU_DIR/gpu$i"; mknod -m 0666 "$GPU_DIR/gpu$i" c 1 3
    fi
  done

  install -d -m 0755 "$CONF_DIR"
  local tmp; tmp="$(mktemp -d)"
  cat >"$tmp/slurm.conf" <<EOF
# Generated by .ci/slurm.sh -- single-node CI cluster. Do not edit by hand.
ClusterName=${CLUSTER}
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# no cgroups in containers; task/affinity (not task/none) because the
# Snakemake jobstep runs "srun --cpu-bind=q", which task/none rejects
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
ReturnToService=2
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# scheduling: several jobs per node, cores and memory are consumable
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${defmem}
# no accounting (no slurmdbd); keep finished jobs visible to squeue for a day
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
MinJobAge=86400
InactiveLimit=0
KillWait=10
Waittime=0
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} Sockets=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=${mem} Gres=gpu:${NGPU} State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$tmp/gres.conf" <<EOF
# Generated by .ci/slurm.sh -- fake GPUs (character devices, see slurm.conf)
AutoDetect=off
Name=gpu File=${GPU_DIR}/gpu[0-$((NGPU - 1))]
EOF
  CONFIG_CHANGED=0
  if ! { cmp -s "$tmp/slurm.conf" "$CONF_DIR/slurm.conf" && cmp -s "$tmp/gres.conf" "$CONF_DIR/gres.conf"; }; then
    CONFIG_CHANGED=1
    install -m 0644 "$tmp/slurm.conf" "$CONF_DIR/slurm.conf"
    install -m 0644 "$tmp/gres.conf" "$CONF_DIR/gres.conf"
    log "wrote $CONF_DIR/slurm.conf ($NODE: CPUs=$cpus RealMemory=$mem, gpu:$NGPU) and gres.conf"
  fi
  rm -rf "$tmp"
  return 0
}

# ---------------------------------------------------------------- daemons
node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
node_idle() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing)$ ]]; }
# slurmctld may still call the node idle for SlurmdTimeout after slurmd died,
# so also ask the local slurmd itself
node_ready() { node_idle && scontrol show slurmd >/dev/null 2>&1; }

stop_daemon() {  # stop_daemon PIDFILE NAME
  local pid
  pid="$(pid_alive "$1" "$2")" || return 0
  log "stopping $2 (pid $pid)"
  kill "$pid" 2>/dev/null || true
  local end=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= end )); then kill -9 "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$1"
}

start_daemon() {  # start_daemon PIDFILE NAME [CMD...]: run CMD (default: NAME), which
                  # writes PIDFILE, unless NAME already runs from PIDFILE
  local pidfile="$1" name="$2"; shift 2
  (( $# )) || set -- "$name"
  if pid_alive "$pidfile" "$name" >/dev/null; then
    log "$name already running"
  else
    log "starting $name"
    DIAGNOSE=1
    "$@" || die "$name failed to start"
  fi
}

do_stop() {
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$MUNGE_PID" munged
  log "stopped"
}

do_start() {
  local t0=$SECONDS
  install_packages
  install -d -m 0755 "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd
  start_munge
  write_config
  if (( CONFIG_CHANGED )); then
    # running daemons must be restarted to pick up the new config
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
  fi

  start_daemon "$CTLD_PID" slurmctld
  # scontrol ping exits 0 even when DOWN on some versions; check the text
  wait_for "$TIMEOUT" "slurmctld does not answer 'scontrol ping' with UP" bash -c 'scontrol ping | grep -q UP'
  start_daemon "$SLURMD_PID" slurmd

  local end=$((SECONDS + TIMEOUT)) st resumed=0
  while :; do
    st="$(node_state || true)"
    node_ready && break
    if [[ $resumed -eq 0 && "$st" =~ ^(down|drain|drained|draining|fail|failing)(\*)?$ ]]; then
      log "node $NODE is '$st', resuming it"
      scontrol update NodeName="$NODE" State=RESUME || true
      resumed=1
    fi
    (( SECONDS < end )) || die "node $NODE not ready after ${TIMEOUT}s (state '${st:-unknown}'; it must be idle and slurmd must answer 'scontrol show slurmd')"
    sleep 0.5
  done
  log "SLURM up in $((SECONDS - t0)) s: node $NODE is $(node_state), cluster $CLUSTER, partition $PARTITION (default), gres gpu:$NGPU"
}

do_status() {
  local rc=0 d pf
  for d in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
    pf="${d#*:}"; d="${d%%:*}"
    if pid="$(pid_alive "$pf" "$d")"; then echo "$d: running (pid $pid)"; else echo "$d: not running"; rc=1; fi
  done
  if command -v sinfo >/dev/null; then
    sinfo -N -o '%N %P %T %c %m %G' 2>&1 || rc=1
    squeue 2>&1 || true
    node_ready || { echo "node $NODE is not ready (slurmd must answer 'scontrol show slurmd')"; rc=1; }
  else
    echo "sinfo: not installed"; rc=1
  fi
  return $rc
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
