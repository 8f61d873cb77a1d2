#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try a workflow (or run CI) without a real one.
#
#   sudo slurm/local_cluster.sh up      install what is missing (Debian/Ubuntu: slurm-wlm, munge),
#                                       write the config, start munged, slurmctld and slurmd;
#                                       returns when `sinfo` shows the node idle
#   sudo slurm/local_cluster.sh down    stop what `up` started
#   slurm/local_cluster.sh status       `sinfo` and `squeue`
#
# The node is `localhost`, with the CPUs (nproc) and memory (/proc/meminfo, less a margin) of this
# machine, in one CPU-only partition `debug` (the default). No cgroups (works in containers),
# no accounting. State and logs go to $VARIFORMER_SLURM_DIR (default /var/spool/variformer-slurm);
# the config to /etc/slurm/slurm.conf unless another program's config is there, in which case it
# stays in the state directory and you `export SLURM_CONF=<state dir>/slurm.conf`.
# Environment: VARIFORMER_SLURM_MEM_MARGIN_MB (memory kept back for the system, default 1024),
# VARIFORMER_SLURM_TIMEOUT (seconds `up` waits for the node, default 90).
set -euo pipefail

STATE=${VARIFORMER_SLURM_DIR:-/var/spool/variformer-slurm}
MARGIN_MB=${VARIFORMER_SLURM_MEM_MARGIN_MB:-1024}
TIMEOUT=${VARIFORMER_SLURM_TIMEOUT:-90}
MARKER="# written by variformer slurm/local_cluster.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge

say() { echo "local_cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

conf_path() {
    # our config lives in /etc/slurm unless someone else's is there
    local etc=/etc/slurm/slurm.conf
    if [ ! -e "$etc" ] || grep -qF "$MARKER" "$etc" 2>/dev/null; then
        echo "$etc"
    else
        echo "$STATE/slurm.conf"
    fi
}

install_missing() {
    local missing=()
    command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing+=(munge)
    for daemon in slurmctld slurmd sbatch; do
        if ! command -v "$daemon" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$daemon" ]; then
            missing+=(slurm-wlm)
            break
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run this as root (sudo $0 up) to install them"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them with your package manager"
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || say "apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() {
    local conf=$1 cpus mem_total real_mem per_cpu slurm_user
    cpus=$(nproc)
    mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    real_mem=$((mem_total - MARGIN_MB))
    [ "$real_mem" -ge 256 ] || real_mem=$((mem_total / 2))
    per_cpu=$((real_mem / cpus))
    slurm_user=root
    if id slurm >/dev/null 2>&1; then slurm_user=slurm; fi
    mkdir -p "$STATE/slurmctld" "$STATE/slurmd" "$(dirname "$conf")"
    chown "$slurm_user" "$STATE/slurmctld"
    cat > "$conf" <<EOF
$MARKER (\`down\` stops the daemons; this file stays)
ClusterName=variformer
SlurmctldHost=localhost
SlurmUser=$slurm_user
AuthType=auth/munge
# a requeued job waits this long before it starts again (default 120 s)
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=600
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/slurmd
StateSaveLocation=$STATE/slurmctld
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
DefMemPerCPU=$per_cpu
NodeName=localhost CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$conf"
    say "wrote $conf (localhost: $cpus CPUs, $real_mem MB, DefMemPerCPU=$per_cpu)"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0  # a munged is already answering
    fi
    if [ ! -s "$MUNGE_KEY" ]; then
        say "creating $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        if command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
            PATH=$PATH:/usr/sbin mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom bs=1 count=1024 of="$MUNGE_KEY" 2>/dev/null
        fi
    fi
    chown -R munge:munge "$(dirname "$MUNGE_KEY")"
    chmod 700 "$(dirname "$MUNGE_KEY")"
    chmod 400 "$MUNGE_KEY"
    mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chmod 755 "$MUNGE_RUN"
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/started-munged"
    for _ in $(seq 50); do
        if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "munged does not answer (see /var/log/munge/munged.log)"
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -n localhost -o '%t' 2>/dev/null | head -1; }

up() {
    install_missing
    mkdir -p "$STATE"
    local conf
    conf=$(conf_path)
    export SLURM_CONF=$conf
    write_conf "$conf"
    start_munge
    if running "$STATE/slurmctld.pid"; then
        scontrol reconfigure >/dev/null 2>&1 || true
    else
        /usr/sbin/slurmctld -f "$conf"
    fi
    if ! running "$STATE/slurmd.pid"; then
        /usr/sbin/slurmd -f "$conf" -N localhost
    fi
    local waited=0 state=""
    while [ "$waited" -lt "$TIMEOUT" ]; do
        state=$(node_state || true)
        case "$state" in
            idle | mix | alloc) break ;;
            down* | drain* | drng*)
                scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
        waited=$((waited + 1))
    done
    case "$state" in
        idle | mix | alloc) ;;
        *) die "the node is '${state:-not answering}' after ${TIMEOUT}s; see $STATE/slurmctld.log and $STATE/slurmd.log" ;;
    esac
    sinfo >&2
    if [ "$conf" != /etc/slurm/slurm.conf ]; then
        say "another slurm.conf is in /etc/slurm: run \`export SLURM_CONF=$conf\` to use this cluster"
    fi
    say "up in ${waited}s"
}

down() {
    export SLURM_CONF
    SLURM_CONF=$(conf_path)
    local pidfile
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
        if running "$pidfile"; then
            kill "$(cat "$pidfile")"
            for _ in $(seq 50); do running "$pidfile" || break; sleep 0.2; done
        fi
    done
    if [ -e "$STATE/started-munged" ] && running "$MUNGE_RUN/munged.pid"; then
        kill "$(cat "$MUNGE_RUN/munged.pid")"
        rm -f "$STATE/started-munged"
    fi
    say "stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status)
        SLURM_CONF=$(conf_path) && export SLURM_CONF
        sinfo && squeue ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
