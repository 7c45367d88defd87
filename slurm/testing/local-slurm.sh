#!/usr/bin/env bash
# A throw-away Slurm "cluster" on this machine, for tests (sourced, not run).
#
#   source slurm/testing/local-slurm.sh
#   local_slurm_start DIR [NODES [GPUS]]  # munged + slurmctld + NODES slurmd, state under DIR
#   ... sbatch/squeue/scancel now talk to it (SLURM_CONF is exported) ...
#   local_slurm_stop          # stops the daemons by their pid files
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (as
# /work/shared/design.md describes). Everything lives under DIR: its own munge
# socket, state, spool, logs, and ports chosen at random so that it never
# touches a Slurm or munge already running here. One partition "local".
#
# NODES = 1 (the default): one node named after `hostname`, with the CPUs and
# memory `slurmd -C` reports.
#
# NODES > 1: a simulated cluster of nodes ctmq-n1 ... ctmq-nNODES, each its
# own slurmd on this host (slurmd -N NAME: distinct names, ports, spool
# directories and logs), each with this host's CPUs and GPUS fake GPUs
# declared as GRES "gpu" (character devices DIR/dev/NODE/nvidiaK made with
# mknod; nothing opens them, Slurm only hands them out and sets
# CUDA_VISIBLE_DEVICES). Each slurmd runs in a mount namespace of its own
# with a private tmpfs on DIR/pmix, the directory its PMIx server and the
# ranks' PMIx clients use (mpi.conf), so the two nodes' servers never share
# a socket directory although they run on one host. Open MPI's ranks on
# different simulated nodes talk over TCP (loopback). What this cannot
# simulate: real GPUs, separate memory and file systems (every node sees
# this host's files, so a node-local run directory cannot be shown here).
#
# Call local_slurm_stop from an EXIT trap.

local_slurm_start() {
  local dir=$1 nodes=${2:-1} gpus=${3:-0}
  mkdir -p "$dir"/{state,spool,log}
  chmod 755 "$dir"
  LOCAL_SLURM_DIR=$dir
  local host port
  host=$(hostname -s)
  port=$((20000 + (RANDOM % 2000) * 4))
  local hw
  hw=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ UpTime=.*//')
  local node_lines partition_nodes
  if ((nodes == 1)); then
    node_lines="NodeName=$host $hw"
    partition_nodes=$host
    LOCAL_SLURM_NODES=("$host")
  else
    node_lines="GresTypes=gpu"$'\n'
    LOCAL_SLURM_NODES=()
    : >"$dir/gres.conf"
    local i name
    for ((i = 1; i <= nodes; ++i)); do
      name=ctmq-n$i
      LOCAL_SLURM_NODES+=("$name")
      mkdir -p "$dir/spool/$name" "$dir/dev/$name"
      node_lines+="NodeName=$name NodeHostname=$host NodeAddr=127.0.0.1 Port=$((port + 1 + i)) $hw"
      if ((gpus > 0)); then
        node_lines+=" Gres=gpu:$gpus"
        local k
        for ((k = 0; k < gpus; ++k)); do
          # 195: the NVIDIA driver's major number; nothing ever opens these.
          [[ -e $dir/dev/$name/nvidia$k ]] || mknod "$dir/dev/$name/nvidia$k" c 195 "$k"
        done
        echo "NodeName=$name Name=gpu File=$dir/dev/$name/nvidia[0-$((gpus - 1))]" >>"$dir/gres.conf"
      fi
      node_lines+=$'\n'
    done
    partition_nodes=ctmq-n[1-$nodes]
    mkdir -p "$dir/pmix"
    cat >"$dir/mpi.conf" <<CONF
PMIxCliTmpDirBase=$dir/pmix
CONF
  fi
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ctmqtest
SlurmctldHost=$host
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
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
MinJobAge=600
KillWait=5
$node_lines
PartitionName=local Nodes=$partition_nodes Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  munged --force --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" ||
    { echo "local-slurm: munged failed to start; see $dir/log/munged.log" >&2; return 1; }
  slurmctld -f "$SLURM_CONF" ||
    { echo "local-slurm: slurmctld failed; see $dir/log/slurmctld.log" >&2; return 1; }
  local name
  if ((nodes == 1)); then
    mkdir -p "$dir/spool/$host"
    slurmd -f "$SLURM_CONF" ||
      { echo "local-slurm: slurmd failed; see $dir/log/" >&2; return 1; }
  else
    for name in "${LOCAL_SLURM_NODES[@]}"; do
      # A private tmpfs on DIR/pmix for this node's PMIx server and clients,
      # and on /dev/shm for its ranks' shared-memory segments (Open MPI names
      # them by host name, which both nodes share).
      # shellcheck disable=SC2016  # $1..$3 expand in the inner shell
      unshare --mount --propagation private sh -c \
        'mount -t tmpfs -o size=64m tmpfs "$1" && mount -t tmpfs -o size=1g tmpfs /dev/shm &&
         exec slurmd -f "$2" -N "$3"' \
        sh "$dir/pmix" "$SLURM_CONF" "$name" ||
        { echo "local-slurm: slurmd -N $name failed; see $dir/log/slurmd-$name.log" >&2; return 1; }
    done
  fi
  local i up
  for ((i = 0; i < 60; ++i)); do
    up=$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed|allocated)$' || true)
    if ((up >= nodes)); then
      echo "local-slurm: up (SLURM_CONF=$SLURM_CONF, node(s) ${LOCAL_SLURM_NODES[*]}, port $port)"
      return 0
    fi
    sleep 1
  done
  echo "local-slurm: $nodes node(s) did not become idle in 60 s; see $dir/log/" >&2
  sinfo -N >&2 || true
  return 1
}

local_slurm_stop() {
  local dir=${LOCAL_SLURM_DIR:-}
  [[ -n $dir ]] || return 0
  local file pid i
  for file in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [[ -f $file ]] || continue
    pid=$(cat "$file")
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
