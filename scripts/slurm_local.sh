#!/usr/bin/env bash
# slurm_local.sh - a real one-node Slurm 22.05 cluster on this host, for the
# mtl_cluster test suite and CI (Debian 12, run as root, no systemd needed).
#
#   scripts/slurm_local.sh [start]   install what is missing, start everything,
#                                    wait until the node is idle (idempotent)
#   scripts/slurm_local.sh stop      stop slurmd, slurmctld, slurmdbd, mariadb, munged
#   scripts/slurm_local.sh status    say which daemons are up (exit 1 if any is down)
#   scripts/slurm_local.sh env       print the export lines clients may need
#
# Daemons: munged, MariaDB (mysqld_safe), slurmdbd, slurmctld, slurmd, all
# started directly (no systemd).  Config goes to /etc/slurm (the default path,
# so plain sbatch/sinfo/sacct and submitit need no environment); state, spool,
# pid files and logs go to $MTL_SLURM_STATE (default /var/tmp/mtl-slurm).
# Two fake GPUs (/dev/fakegpu0-1, copies of /dev/null) are exposed as gres/gpu.
# See docs/local_slurm.md.
set -euo pipefail

STATE_DIR=${MTL_SLURM_STATE:-/var/tmp/mtl-slurm}
CLUSTER=${MTL_SLURM_CLUSTER:-mtl}
WAIT_S=${MTL_SLURM_WAIT:-90}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG=$STATE_DIR/log
RUN=$STATE_DIR/run
DB_NAME=slurm_acct_db
DB_USER=slurm
MUNGE_SOCK=/run/munge/munge.socket.2
MYSQL_SOCK=/run/mysqld/mysqld.sock
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
NGPU=2
HOST=$(hostname -s)

export SLURM_CONF=$CONF
unset SLURM_JOB_ID SLURM_JOBID 2>/dev/null || true

say() { echo "slurm_local: $*"; }

# Print the last lines of the given logs (those that exist).
tail_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "---- last lines of $f ----"
        tail -n "${TAIL_N:-15}" "$f"
    done
}

# fail MESSAGE [LOG...]: print the reason and the tail of the logs, exit 1.
fail() {
    local msg=$1
    shift
    echo "slurm_local: ERROR: $msg" >&2
    tail_logs "$@" >&2
    exit 1
}

# pid_alive PIDFILE COMM: the process in PIDFILE exists and is named COMM.
pid_alive() {
    local pid st
    pid=$(pid_of "$1")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    # A killed daemon is a zombie until PID 1 reaps it: that is not "up".
    st=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $st && $st != Z && $st != X ]]
}

pid_of() { { head -n1 "$1" 2>/dev/null || true; } | tr -dc 0-9; }

munge_up() { munge -n -S "$MUNGE_SOCK" 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }
mysql_up() { [[ -S $MYSQL_SOCK ]] && mariadb-admin --protocol=socket -S "$MYSQL_SOCK" -uroot ping >/dev/null 2>&1; }
# True once mariadb answers, or as soon as mysqld_safe has given up.
mysql_up_or_gone() { mysql_up || [[ ! -d /proc/$(pid_of "$RUN/mysqld_safe.pid") ]]; }
dbd_up() { pid_alive "$RUN/slurmdbd.pid" slurmdbd; }
ctld_up() { pid_alive "$RUN/slurmctld.pid" slurmctld; }
slurmd_up() { pid_alive "$RUN/slurmd.pid" slurmd; }

# wait_for SECONDS WHAT CHECK... : poll CHECK every 0.5 s.
wait_for() {
    local secs=$1 i
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        "$@" && return 0
        sleep 0.5
    done
    return 1
}

# Stop the process in PIDFILE (named COMM): SIGTERM, then SIGKILL after SECS.
stop_pid() {
    local pidfile=$1 comm=$2 secs=${3:-20} pid i
    pid_alive "$pidfile" "$comm" || { rm -f "$pidfile"; return 0; }
    pid=$(pid_of "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 4; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.25
    done
    if [[ -d /proc/$pid ]]; then
        say "$comm (pid $pid) ignored SIGTERM for ${secs}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- packages --
missing_pkgs() {
    local p st
    for p in "${PKGS[@]}"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ $st == installed ]] || echo "$p"
    done
}

install_pkgs() {
    local missing created_policy=0
    missing=$(missing_pkgs)
    [[ -z $missing ]] && return 0
    say "installing: ${missing//$'\n'/ } (apt log: $LOG/apt.log)"
    # Keep the packages' maintainer scripts from starting daemons themselves:
    # this script starts them, with its own config.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    local rc=0
    {
        apt-get update -q -o DPkg::Lock::Timeout=300 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "${PKGS[@]}"
    } >"$LOG/apt.log" 2>&1 || rc=$?
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || TAIL_N=25 fail "apt-get failed (exit $rc)" "$LOG/apt.log"
    missing=$(missing_pkgs)
    [[ -z $missing ]] || fail "still missing after apt-get: $missing" "$LOG/apt.log"
}

# ------------------------------------------------------------------- munge --
start_munge() {
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    munge_up && return 0
    say "starting munged"
    # --force: a socket left by a killed munged would block the start.
    runuser -u munge -- /usr/sbin/munged --force </dev/null >>"$LOG/munged.out" 2>&1 9>&- ||
        fail "munged did not start" "$LOG/munged.out" /var/log/munge/munged.log
    wait_for 15 munge munge_up || fail "munged does not answer" /var/log/munge/munged.log
}

# ----------------------------------------------------------------- mariadb --
start_mariadb() {
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        say "initialising the MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 ||
            fail "mariadb-install-db failed" "$LOG/mariadb-install.log"
    fi
    if ! mysql_up; then
        say "starting mariadb"
        rm -f "$MYSQL_SOCK"
        touch "$LOG/mariadb.log"
        chown mysql:mysql "$LOG/mariadb.log"
        # A process of this script's group is not a group leader, so setsid
        # execs mysqld_safe in place, in a session of its own.
        setsid mysqld_safe --user=mysql --skip-syslog --log-error="$LOG/mariadb.log" \
            --socket="$MYSQL_SOCK" --pid-file=/run/mysqld/mysqld.pid \
            --innodb-lock-wait-timeout=900 \
            </dev/null >>"$LOG/mysqld_safe.out" 2>&1 9>&- &
        echo $! >"$RUN/mysqld_safe.pid"
        wait_for 60 mariadb mysql_up_or_gone && mysql_up ||
            fail "mariadb did not come up within 60s" "$LOG/mariadb.log" "$LOG/mysqld_safe.out"
    fi
}

setup_database() {
    local pass=$1
    mariadb --protocol=socket -S "$MYSQL_SOCK" -uroot >"$LOG/mariadb-setup.log" 2>&1 <<SQL ||
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
        fail "could not create the accounting database" "$LOG/mariadb-setup.log" "$LOG/mariadb.log"
}

# ------------------------------------------------------------------ config --
# Prints "CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
node_hw() {
    local line cpus mem
    line=$(slurmd -C 2>/dev/null | head -n1 || true)
    if [[ $line == NodeName=* ]]; then
        cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$line")
        mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
        echo "$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' -e 's/ *UpTime=.*//' <<<"$line") RealMemory=$((mem - $(headroom "$mem")))"
    else
        cpus=$(nproc)
        mem=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
        echo "CPUs=$cpus RealMemory=$((mem - $(headroom "$mem")))"
    fi
}

# Memory left to the OS, MariaDB and the daemons: 10%, at least 1 GiB.
headroom() { local h=$(($1 / 10)); ((h < 1024)) && h=1024; echo $h; }

write_if_changed() { # PATH MODE: content on stdin; returns 0 if the file changed
    local path=$1 mode=$2 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$path"
    return 0
}

SLURM_CONF_CHANGED=0
DBD_CONF_CHANGED=0

write_configs() {
    local pass=$1 hw
    hw=$(node_hw)
    mkdir -p "$CONF_DIR"
    write_if_changed "$CONF" 644 <<EOF && SLURM_CONF_CHANGED=1 || true
# Written by mtl_cluster scripts/slurm_local.sh - local one-node test cluster.
# Changes are overwritten by the next 'slurm_local.sh start'.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
# A requeued job may start again after cred_expire seconds (default 120).
AuthInfo=cred_expire=10

StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
MpiDefault=none
MailProg=/bin/true

SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MaxArraySize=1001
MaxJobCount=20000
JobRequeue=1
ReturnToService=2

# Short timers so the tests are fast.  slurmctld checks time limits every
# 30 s (fixed in Slurm), so a job is killed 0-30 s after its limit.
OverTimeLimit=0
KillWait=5
MinJobAge=60
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10

AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
# sacct keeps --comment: mtl-launch's submission journal finds its jobs by the token in it.
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none

# Preemption as on a shared cluster: a job in 'urgent' requeues the jobs of the other partitions it
# needs room from (the fault tests use it; nothing else submits there).
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE

GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 $hw Gres=gpu:$NGPU State=UNKNOWN
PartitionName=gpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=debug Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10
EOF
    write_if_changed "$CONF_DIR/gres.conf" 644 <<EOF && SLURM_CONF_CHANGED=1 || true
# Written by mtl_cluster scripts/slurm_local.sh: fake GPUs (character devices 1,3).
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/fakegpu[0-$((NGPU - 1))]
EOF
    write_if_changed "$CONF_DIR/slurmdbd.conf" 600 <<EOF && DBD_CONF_CHANGED=1 || true
# Written by mtl_cluster scripts/slurm_local.sh
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=$DB_USER
StoragePass=$pass
StorageLoc=$DB_NAME
EOF
    chown root:root "$CONF_DIR/slurmdbd.conf"
}

make_fake_gpus() {
    local i
    for ((i = 0; i < NGPU; i++)); do
        [[ -c /dev/fakegpu$i ]] || mknod -m 666 "/dev/fakegpu$i" c 1 3 ||
            fail "cannot create /dev/fakegpu$i"
    done
}

# -------------------------------------------------------------- slurm side --
cluster_known() { sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; }
dbd_answers() { sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1; }

start_slurmdbd() {
    if ((DBD_CONF_CHANGED)) && dbd_up; then
        say "slurmdbd.conf changed: restarting slurmdbd"
        stop_pid "$RUN/slurmdbd.pid" slurmdbd
    fi
    if ! dbd_up; then
        say "starting slurmdbd"
        slurmdbd </dev/null >>"$LOG/slurmdbd.out" 2>&1 9>&- ||
            fail "slurmdbd did not start" "$LOG/slurmdbd.out" "$LOG/slurmdbd.log"
    fi
    wait_for 60 slurmdbd dbd_answers ||
        fail "slurmdbd does not answer sacctmgr within 60s" "$LOG/slurmdbd.log" "$LOG/mariadb.log"
    if ! cluster_known; then
        sacctmgr -i add cluster "$CLUSTER" >"$LOG/sacctmgr.out" 2>&1 ||
            cluster_known || fail "sacctmgr add cluster $CLUSTER failed" "$LOG/sacctmgr.out"
    fi
}

ctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurm() {
    if ((SLURM_CONF_CHANGED)) && { ctld_up || slurmd_up; }; then
        say "slurm.conf/gres.conf changed: restarting slurmctld and slurmd"
        stop_pid "$RUN/slurmd.pid" slurmd
        stop_pid "$RUN/slurmctld.pid" slurmctld
    fi
    if ! ctld_up; then
        say "starting slurmctld"
        # -i: ignore unreadable state files from an older configuration.
        slurmctld -i </dev/null >>"$LOG/slurmctld.out" 2>&1 9>&- ||
            fail "slurmctld did not start" "$LOG/slurmctld.out" "$LOG/slurmctld.log"
    fi
    wait_for 30 slurmctld ctld_answers ||
        fail "slurmctld does not answer within 30s" "$LOG/slurmctld.log" "$LOG/slurmctld.out"
    if ! slurmd_up; then
        say "starting slurmd"
        slurmd </dev/null >>"$LOG/slurmd.out" 2>&1 9>&- ||
            fail "slurmd did not start" "$LOG/slurmd.out" "$LOG/slurmd.log"
    fi
}

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

node_ready() {
    case $(node_state) in
        idle | mixed | allocated | completing) return 0 ;;
    esac
    return 1
}

wait_node_idle() {
    local deadline=$((SECONDS + WAIT_S)) st last_resume=-100
    while ((SECONDS < deadline)); do
        st=$(node_state)
        case $st in
            idle | mixed | allocated | completing)
                say "ready: node $HOST $st, partitions gpu (default), debug and urgent (preempts), ${NGPU} fake GPUs"
                return 0
                ;;
            down* | drain* | fail*)
                # Left down/drained by an earlier run (not answering = '*'
                # suffix, e.g. "down*", is left to slurmd's registration).
                if [[ $st != *'*' ]] && ((SECONDS - last_resume >= 5)); then
                    say "node $HOST is $st: resuming it"
                    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
                    last_resume=$SECONDS
                fi
                ;;
        esac
        slurmd_up || fail "slurmd died" "$LOG/slurmd.log" "$LOG/slurmd.out"
        sleep 1
    done
    fail "node $HOST not idle after ${WAIT_S}s (state: ${st:-unknown}; $(sinfo -h -N -o '%E' -n "$HOST" 2>/dev/null))" \
        "$LOG/slurmctld.log" "$LOG/slurmd.log"
}

db_password() {
    local f=$STATE_DIR/db.pass
    if [[ ! -s $f ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$f")
    fi
    chmod 600 "$f"
    cat "$f"
}

all_up() { munge_up && mysql_up && dbd_up && ctld_up && slurmd_up; }

# ---------------------------------------------------------------- commands --
cmd_start() {
    local t0=$SECONDS pass
    mkdir -p "$STATE_DIR" "$LOG" "$RUN" "$STATE_DIR/ctld" "$STATE_DIR/spool"
    chmod 755 "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 120 9 || fail "another slurm_local.sh holds $STATE_DIR/.lock"

    install_pkgs
    pass=$(db_password)
    write_configs "$pass"
    make_fake_gpus

    if ((SLURM_CONF_CHANGED == 0 && DBD_CONF_CHANGED == 0)) && all_up && node_ready; then
        say "already running (node $HOST $(node_state))"
        return 0
    fi

    start_munge
    start_mariadb
    setup_database "$pass"
    start_slurmdbd
    start_slurm
    wait_node_idle
    say "started in $((SECONDS - t0))s; logs in $LOG"
}

cmd_stop() {
    local any=0
    if [[ -d $STATE_DIR ]]; then
        exec 9>"$STATE_DIR/.lock"
        flock -w 120 9 || fail "another slurm_local.sh holds $STATE_DIR/.lock"
    fi
    if [[ -d $RUN ]]; then
        for d in slurmd slurmctld slurmdbd; do
            if pid_alive "$RUN/$d.pid" "$d"; then
                say "stopping $d"
                stop_pid "$RUN/$d.pid" "$d" 30
                any=1
            fi
        done
    fi
    if command -v mariadb-admin >/dev/null && mysql_up; then
        say "stopping mariadb"
        mariadb-admin --protocol=socket -S "$MYSQL_SOCK" -uroot shutdown >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 120; i++)); do
            [[ -S $MYSQL_SOCK ]] || pid_alive "$RUN/mysqld_safe.pid" mysqld_safe || break
            sleep 0.25
        done
        any=1
    fi
    if pid_alive /run/munge/munged.pid munged; then
        say "stopping munged"
        stop_pid /run/munge/munged.pid munged 10
        any=1
    fi
    ((any)) && say "stopped" || say "nothing was running"
}

cmd_status() {
    local ok=0 st
    show() { # NAME CHECK PIDFILE
        local name=$1 check=$2 pidfile=$3 pid=""
        [[ -n $pidfile ]] && pid=$(pid_of "$pidfile")
        if $check; then
            printf '%-10s up%s\n' "$name" "${pid:+ (pid $pid)}"
        else
            printf '%-10s down\n' "$name"
            ok=1
        fi
    }
    command -v munge >/dev/null || { say "not installed (run: $0 start)"; return 1; }
    show munged munge_up /run/munge/munged.pid
    show mariadb mysql_up /run/mysqld/mysqld.pid
    show slurmdbd dbd_up "$RUN/slurmdbd.pid"
    show slurmctld ctld_up "$RUN/slurmctld.pid"
    show slurmd slurmd_up "$RUN/slurmd.pid"
    if ctld_up; then
        st=$(node_state)
        printf '%-10s %s\n' node "$HOST ${st:-unknown}"
    fi
    return $ok
}

cmd_env() {
    # Config lives at the default path; this only guards against a stray
    # SLURM_CONF in the caller's environment.
    echo "export SLURM_CONF=$CONF"
}

case ${1:-start} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
    *)
        echo "usage: $0 [start|stop|status|env]" >&2
        exit 2
        ;;
esac
