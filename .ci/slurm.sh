#!/usr/bin/env bash
# Start a one-node Slurm cluster (munged, slurmctld, slurmd) on this machine
# for voxflow's Slurm executor tests. There is no systemd here, so the daemons
# are started directly. Safe to run again while Slurm is already up: it then
# only waits for the node to be usable.
#
# Environment:
#   SLURM_CONF        slurm.conf to write (default /etc/slurm/slurm.conf)
#   SLURM_PARTITION   name of the default partition (default debug)
#   SLURM_WAIT        seconds to wait for the node to become idle (default 60)
set -euo pipefail

conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
partition=${SLURM_PARTITION:-debug}
wait_s=${SLURM_WAIT:-60}
node=localhost

die() {
	echo "slurm.sh: error: $*" >&2
	for f in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/munge/munged.log; do
		if [ -s "$f" ]; then
			echo "--- last lines of $f:" >&2
			tail -n 15 "$f" >&2
		fi
	done
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E "$0" "$@"
	fi
	die "must run as root (or with sudo available) to start munged, slurmctld and slurmd"
fi

node_state() {
	# An empty string when the controller does not answer.
	timeout 10 sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n1 | tr -d '*~#!%$@^-' || true
}

wait_idle() {
	local deadline=$((SECONDS + wait_s)) state resumed=0
	while :; do
		state=$(node_state)
		case "$state" in
		idle | mixed | allocated | completing)
			echo "slurm.sh: node $node is $state; partition $partition ready"
			return 0
			;;
		down | drained | draining | drain)
			# A restarted slurmd leaves the node down ("unexpectedly rebooted"); bring it back once.
			if [ "$resumed" -eq 0 ]; then
				scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
				resumed=1
			fi
			;;
		esac
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "node $node not idle after ${wait_s}s (state: '${state:-controller not answering}')"
		fi
		sleep 0.5
	done
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

# Already up? Then there is nothing to start. (sinfo is asked only when the
# daemons run: without a controller it retries for about ten seconds.)
if running slurmctld && running slurmd; then
	case "$(node_state)" in
	idle | mixed | allocated | completing)
		wait_idle
		exit 0
		;;
	esac
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
	! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
	echo "slurm.sh: installing slurm-wlm and munge"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# --- munge -------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "user munge does not exist (is the munge package installed?)"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
	if command -v mungekey >/dev/null 2>&1; then
		mungekey --create --keyfile=/etc/munge/munge.key >/dev/null || die "mungekey --create failed"
	else
		dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none || die "cannot write /etc/munge/munge.key"
	fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
	rm -f /run/munge/munged.pid
	runuser -u munge -- /usr/sbin/munged --force || die "munged did not start"
	for _ in $(seq 1 50); do
		munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
		sleep 0.1
	done
	munge -n | unmunge >/dev/null 2>&1 || die "munged started but credentials do not round-trip"
fi

# --- slurm.conf ----------------------------------------------------------------
# slurmd -C reports this machine's real layout; registering the node with
# exactly that avoids it being drained for "low socket*core*thread count".
hw=$(slurmd -C 2>/dev/null | head -n1) || true
case "$hw" in
NodeName=*) ;;
*) die "slurmd -C did not report the node's hardware (got: '$hw')" ;;
esac
hw=${hw#NodeName=* }
install -d -o slurm -g slurm -m 0755 /var/lib/slurm/slurmctld /var/log/slurm
install -d -m 0755 /var/lib/slurm/slurmd "$(dirname "$conf")"

tmp=$(mktemp)
cat >"$tmp" <<EOF
# Written by voxflow .ci/slurm.sh: a one-node cluster for tests.
ClusterName=voxflow
SlurmctldHost=localhost(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# cgroup tracking fails in this sandbox: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
# Start small jobs at once rather than on the scheduler's default cadence.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SchedulerType=sched/backfill
# Keep finished jobs visible to scontrol for a while: the executor reads end states there.
MinJobAge=600
KillWait=5
OverTimeLimit=0
ReturnToService=2
MpiDefault=none
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
if ! cmp -s "$tmp" "$conf"; then
	install -m 0644 "$tmp" "$conf"
fi
rm -f "$tmp"

# --- daemons -----------------------------------------------------------------
if ! running slurmctld; then
	# -i: ignore state files a previous, differently configured run left behind.
	slurmctld -i -f "$conf" || die "slurmctld did not start"
fi
if ! running slurmd; then
	slurmd -N "$node" -f "$conf" || die "slurmd did not start"
fi
if running slurmctld && running slurmd && [ -z "$(node_state)" ]; then
	# Daemons from an earlier config may be up but deaf; tell them to reread it.
	scontrol reconfigure >/dev/null 2>&1 || true
fi

wait_idle
