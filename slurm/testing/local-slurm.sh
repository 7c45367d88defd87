#!/usr/bin/env bash
# A throw-away Slurm "cluster" on this machine, for tests (sourced, not run).
#
#   source slurm/testing/local-slurm.sh
#   local_slurm_start DIR     # munged + slurmctld + slurmd, all state under DIR
#   ... sbatch/squeue/scancel now talk to it (SLURM_CONF is exported) ...
#   local_slurm_stop          # stops the three daemons by their pid files
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (as
# /work/shared/design.md describes). Everything lives under DIR: its own munge
# socket, state, spool, logs, and ports chosen at random so that it never
# touches a Slurm or munge already running here. One node, named after
# `hostname`, with the CPUs and memory `slurmd -C` reports; one partition
# "local". Call local_slurm_stop from an EXIT trap.

local_slurm_start() {
  local dir=$1
  mkdir -p "$dir"/{state,spool,log}
  chmod 755 "$dir"
  LOCAL_SLURM_DIR=$dir
  local node port
  node=$(hostname -s)
  port=$((20000 + (RANDOM % 2000) * 2))
  local hw
  hw=$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$node/; s/ UpTime=.*//")
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ctmqtest
SlurmctldHost=$node
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
MinJobAge=600
KillWait=5
$hw
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  munged --force --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" ||
    { echo "local-slurm: munged failed to start; see $dir/log/munged.log" >&2; return 1; }
  slurmctld -f "$SLURM_CONF" ||
    { echo "local-slurm: slurmctld failed; see $dir/log/slurmctld.log" >&2; return 1; }
  slurmd -f "$SLURM_CONF" ||
    { echo "local-slurm: slurmd failed; see $dir/log/slurmd.log" >&2; return 1; }
  local i
  for ((i = 0; i < 60; ++i)); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "local-slurm: up (SLURM_CONF=$SLURM_CONF, node $node, port $port)"
      return 0
    fi
    sleep 1
  done
  echo "local-slurm: node did not become idle in 60 s; see $dir/log/" >&2
  sinfo -N >&2 || true
  return 1
}

local_slurm_stop() {
  local dir=${LOCAL_SLURM_DIR:-}
  [[ -n $dir ]] || return 0
  local name pid i
  for name in slurmd slurmctld munged; do
    [[ -f $dir/$name.pid ]] || continue
    pid=$(cat "$dir/$name.pid")
    if [[ -z $pid ]] || ! kill "$pid" 2>/dev/null; then continue; fi
    for ((i = 0; i < 50; ++i)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  LOCAL_SLURM_DIR=
  return 0
}
