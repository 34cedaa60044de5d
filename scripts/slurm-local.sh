#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, for testing the job scripts in
# docs/slurm/ (tests/slurm.rs uses it). Everything it writes lives in one folder.
#
#   scripts/slurm-local.sh start [DIR]   install slurm-wlm and munge with apt if missing, write a
#                                        config into DIR (made if absent; a new temporary folder if
#                                        omitted), start munged, slurmctld and slurmd, wait until
#                                        the node is idle, print the environment a caller needs
#                                        (KEY=VALUE lines on stdout, also saved as DIR/env)
#   scripts/slurm-local.sh stop DIR      cancel the cluster's jobs, stop exactly the daemons that
#                                        `start` recorded in DIR/pids, remove DIR
#   scripts/slurm-local.sh env DIR       print DIR/env again
#
# Use the cluster with `source DIR/env` (or `eval "$(scripts/slurm-local.sh start DIR)"`): SLURM_CONF
# points sbatch, squeue, scancel and sinfo at it. Jobs run as root on this host.
#
# Exit status: 0 done; 77 skipped: Slurm cannot be set up here (not root, or Slurm missing and no
# apt-get), the reason on stderr; 78 apt-get update/install failed (no network, say: a test may
# skip on it, CI should not); 1 any other failure (start stops what it started first); 2 usage.
#
# The config (Slurm 22.05, Debian 12's slurm-wlm): SlurmUser=root; select/cons_tres with CR_CPU
# (CPUs are what jobs share; memory is not a consumable, so jobs without --mem do not each take
# the whole node); one node named after this host with the CPUs and memory `slurmd -C` reports,
# reached at 127.0.0.1; one partition; proctrack/linuxproc and task/none (no cgroups, which
# containers often lack); no accounting, no job completion log, no GRES (no GPUs); the first free
# pair of ports from 6817 (SLURM_LOCAL_PORT overrides). munged runs with its own key, socket, pid,
# seed and log in DIR/munge, and Slurm is pointed at that socket (AuthInfo=socket=...), so a
# system munged, if any, is neither used nor disturbed.
set -euo pipefail

SKIP=77
NO_INSTALL=78
PATH="$PATH:/usr/sbin:/sbin"
export PATH
MARKER=.slurm-local

say() { echo "slurm-local.sh: $*" >&2; }
skip() { say "SKIP: $*"; exit "$SKIP"; }
die() { say "error: $*"; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

have_all() {
    command -v sbatch >/dev/null 2>&1 && command -v slurmctld >/dev/null 2>&1 \
        && command -v slurmd >/dev/null 2>&1 && command -v munged >/dev/null 2>&1
}

# Installs slurm-wlm (slurmctld, slurmd, the client commands) and munge from Debian/Ubuntu's
# archive unless they are already there. Skips (77) when that is impossible.
install_slurm() {
    if have_all; then return 0; fi
    [[ $(id -u) -eq 0 ]] || skip "slurm-wlm/munge are not installed and this is not root (apt-get needs root)"
    command -v apt-get >/dev/null 2>&1 || skip "slurm-wlm/munge are not installed and there is no apt-get"
    local t0
    t0=$(now)
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt-get or dpkg (up to 5 minutes) instead of failing on its lock.
    local apt=(apt-get -o DPkg::Lock::Timeout=300)
    # A fresh image has no package lists: update them when apt knows no slurm-wlm to install.
    if ! apt-cache policy slurm-wlm 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        say "apt-get update"
        "${apt[@]}" update -qq >&2 || { say "apt-get update failed"; exit "$NO_INSTALL"; }
    fi
    say "installing slurm-wlm and munge (apt-get)"
    if ! "${apt[@]}" install -y -qq --no-install-recommends slurm-wlm munge >"$1/apt.log" 2>&1; then
        tail -n 20 "$1/apt.log" >&2
        say "apt-get install slurm-wlm munge failed (see above)"
        exit "$NO_INSTALL"
    fi
    have_all || die "slurm-wlm and munge were installed but sbatch/slurmctld/slurmd/munged are not on PATH"
    say "installed in $(since "$t0") s"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts "$@" in the background as a child that outlives this script (stdin from /dev/null,
# output to a file, so a caller that captures our output is not held open) and records its pid.
spawn() {
    local name=$1 log=$2
    shift 2
    "$@" </dev/null >>"$log" 2>&1 &
    echo "$name $!" >>"$DIR/pids"
}

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$DIR/pids" 2>/dev/null | tail -n 1; }

# Whether pid $2 is alive and is the $1 that start launched (its command line names DIR), so a
# reused pid is never signalled.
ours() {
    local pid=$2
    [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"$1"*"$DIR"* ]]
}

# Stops the recorded daemons: SIGTERM, then SIGKILL after 10 s.
kill_daemons() {
    [[ -f "$DIR/pids" ]] || return 0
    local name pid
    for name in slurmd slurmctld munged; do
        pid=$(pid_of "$name")
        ours "$name" "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            ours "$name" "$pid" || break
            # A daemon started by an earlier shell is not our child: poll /proc instead of wait.
            sleep 0.1
        done
        if ours "$name" "$pid"; then
            say "$name ($pid) ignored SIGTERM for 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Cancels every job of this cluster and waits (at most 20 s) until none is left running, so no
# job step outlives its slurmd.
cancel_jobs() {
    local conf=$DIR/etc/slurm.conf
    [[ -f "$conf" ]] && ours slurmctld "$(pid_of slurmctld)" || return 0
    SLURM_CONF=$conf scancel --partition=local >/dev/null 2>&1 || true
    for _ in $(seq 200); do
        [[ -z "$(SLURM_CONF=$conf squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ]] && return 0
        sleep 0.1
    done
    say "jobs still running after 20 s: $(SLURM_CONF=$conf squeue -h -o '%i %T' | tr '\n' ' ')"
}

stop() {
    [[ -d "$DIR" ]] || { say "$DIR does not exist: nothing to stop"; return 0; }
    [[ -f "$DIR/$MARKER" ]] || die "$DIR was not made by slurm-local.sh start (no $MARKER): not touching it"
    cancel_jobs
    kill_daemons
    rm -rf "$DIR"
    say "stopped; removed $DIR"
}

start() {
    local t0
    t0=$(now)
    [[ $(id -u) -eq 0 ]] || skip "this is not root (slurmd runs the jobs as root here, and apt-get needs root)"
    if [[ -z "$DIR" ]]; then
        DIR=$(mktemp -d "${TMPDIR:-/tmp}/slurm-local.XXXXXX")
    else
        mkdir -p "$DIR"
        DIR=$(cd "$DIR" && pwd -P)
        [[ -z "$(ls -A "$DIR")" ]] || die "$DIR is not empty: give start an empty or new folder"
    fi
    chmod 0755 "$DIR"
    touch "$DIR/$MARKER"
    # If anything below fails, stop what was started and leave the logs' tails on stderr.
    trap 'rc=$?; if [[ $rc -eq 1 ]]; then dump_logs; fi; if [[ $rc -ne 0 ]]; then stop >/dev/null 2>&1 || true; fi' EXIT

    install_slurm "$DIR"
    local t_up
    t_up=$(now)
    # munge's socket must fit a sockaddr_un (108 bytes).
    local sock=$DIR/munge/munge.socket
    ((${#sock} < 100)) || die "$DIR is too long a path for munge's socket; use a shorter folder"

    mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge"
    chmod 0700 "$DIR/munge"

    # munge: a key of its own, made now; socket, pid, seed and log beside it.
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1
    else
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1 count=1024 status=none
    fi
    chmod 0600 "$DIR/munge/munge.key"
    spawn munged "$DIR/log/munged.out" "$(command -v munged)" --foreground --force \
        --key-file="$DIR/munge/munge.key" --socket="$sock" --pid-file="$DIR/munge/munged.pid" \
        --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log"
    for _ in $(seq 100); do
        [[ -S "$sock" ]] && break
        ours munged "$(pid_of munged)" || die "munged exited: $(tail -n 5 "$DIR/log/munged.out" "$DIR/log/munged.log" 2>/dev/null)"
        sleep 0.1
    done
    [[ -S "$sock" ]] || die "munged made no socket at $sock in 10 s"
    munge --socket="$sock" -n | unmunge --socket="$sock" >/dev/null || die "munge/unmunge through $sock failed"

    # The node as slurmd sees it: CPUs, topology and memory.
    local node_line host ctl_port d_port
    node_line=$(slurmd -C | head -n 1)
    host=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$node_line")
    [[ -n "$host" ]] || die "slurmd -C printed no node line: $node_line"
    ctl_port=${SLURM_LOCAL_PORT:-6817}
    while port_busy "$ctl_port" || port_busy $((ctl_port + 1)); do
        ctl_port=$((ctl_port + 2))
        ((ctl_port < 6917)) || die "no free pair of ports in 6817-6916"
    done
    d_port=$((ctl_port + 1))

    cat >"$DIR/etc/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh for a throw-away single-node cluster in $DIR.
ClusterName=shiftbench-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/etc/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$DIR/etc/plugstack.conf"
    export SLURM_CONF=$DIR/etc/slurm.conf

    spawn slurmctld "$DIR/log/slurmctld.out" "$(command -v slurmctld)" -D -f "$SLURM_CONF"
    spawn slurmd "$DIR/log/slurmd.out" "$(command -v slurmd)" -D -N "$host" -f "$SLURM_CONF"

    # Up when sinfo reports the node idle (at most 60 s).
    local state=""
    for _ in $(seq 600); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
        [[ "$state" == idle ]] && break
        for name in munged slurmctld slurmd; do
            ours "$name" "$(pid_of "$name")" || die "$name exited"
        done
        sleep 0.1
    done
    [[ "$state" == idle ]] || die "the node is not idle after 60 s (sinfo: ${state:-nothing})"

    cat >"$DIR/env" <<EOF
SLURM_CONF=$SLURM_CONF
SLURM_LOCAL_DIR=$DIR
SLURM_LOCAL_NODE=$host
SLURM_LOCAL_CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
EOF
    trap - EXIT
    cat "$DIR/env"
    say "up in $(since "$t0") s ($(since "$t_up") s after the install check): $node_line; ports $ctl_port/$d_port"
}

dump_logs() {
    local f
    for f in "$DIR"/log/*; do
        [[ -s "$f" ]] || continue
        say "--- last lines of $f"
        tail -n 15 "$f" >&2
    done
}

cmd=${1:-}
DIR=${2:-}
case "$cmd" in
    start) [[ $# -le 2 ]] || usage; start ;;
    stop)
        [[ $# -eq 2 && -n "$DIR" ]] || usage
        DIR=$(cd "$DIR" 2>/dev/null && pwd -P || echo "$DIR")
        stop ;;
    env)
        [[ $# -eq 2 && -f "$DIR/env" ]] || usage
        cat "$DIR/env" ;;
    *) usage ;;
esac
