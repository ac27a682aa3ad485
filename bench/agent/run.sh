#!/bin/bash
# Resource use of `ballast daemon`, measured from outside (/proc/PID, /usr/bin/time -v, nginx's
# access log), on a loop-backed sandbox host installed with `ballast install` and a repository
# published with `ballast repo` served by nginx over HTTPS (throwaway CA):
#   1. resident memory after start-up and after IDLE_CHECKS idle checks of an unchanged repository
#      (a short check interval stands in for hours of hourly checks);
#   2. wake-ups while idle: context switches of all its threads with no check due, and per check;
#   3. bytes and requests of one idle check;
#   4. peak resident memory (VmHWM) while staging a release carrying a ~TREE_MB tree of /usr files
#      and one twice as large, vs the sum of the peaks of `curl | zstd -dc | btrfs receive`;
#   5. latency of `ballast status` and `ballast rollback` (no reboot) over a private D-Bus.
# Usage: bench/agent/run.sh [BUILD_DIR] (default: build). Needs root. Prints a table.
set -euo pipefail
BUILD=$(realpath "${1:-build}")
BALLAST=$BUILD/agent/ballast
SIZE_MB=${TREE_MB:-200}
IDLE_CHECKS=${IDLE_CHECKS:-100}
INTERVAL=${CHECK_INTERVAL:-1}  # seconds
QUIET_S=${QUIET_SECONDS:-30}
RUNS=${LATENCY_RUNS:-20}
HERE=$(dirname "$(realpath "$0")")
SRC=$(realpath "$HERE/../..")
source "$HERE/../../scripts/lib/nginx.sh"
source "$HERE/../../scripts/lib/private-bus.sh"
source "$HERE/../lib/usr_tree.sh"
source "$HERE/../lib/loop_btrfs.sh"
source "$HERE/../lib/sandbox_host.sh"
[ -x "$BALLAST" ] || { echo "no $BALLAST; build first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 2; }

W=$(mktemp -d /tmp/ballast-bench-agent-XXXXXX)
DAEMON_PID=""
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
}
cleanup() {
  set +e
  stop_daemon
  private_bus_stop
  nginx_stop
  btrfs_teardown
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # a signal ends the script; EXIT cleans up

configure() {  # configure NAME INTERVAL
  configure_host "$1" "$2" "metrics_socket = \"$W/hosts/$1/run/metrics.sock\""
}
start_daemon() {  # start_daemon NAME: sets DAEMON_PID
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts "$1") daemon --run-dir "$W/hosts/$1/run" 2>>"$W/hosts/$1/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    [ "$(timeout 2 busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus NameHasOwner s dev.ballast.Agent1 2>/dev/null)" = "b true" ] && return 0
    sleep 0.1
  done
  echo "the daemon did not come up: $(cat "$W/hosts/$1/daemon.log")" >&2
  return 1
}
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }  # field PID Key → kB or count
switches() {  # all threads' voluntary + involuntary context switches
  local t s=0
  for t in /proc/"$1"/task/*/status; do
    s=$((s + $(awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n}' "$t")))
  done
  echo "$s"
}
checks_seen() { grep -c 'timestamp.json ' "$NGINX_LOG" || true; }
checks_reach() {  # checks_reach N: waits until nginx has served N timestamp requests (10 min at most)
  for _ in $(seq 1200); do
    [ "$(checks_seen)" -ge "$1" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "daemon exited: $(tail -5 "$W"/hosts/*/daemon.log)" >&2; return 1; }
    sleep 0.5
  done
  echo "timed out waiting for $1 checks (saw $(checks_seen)): $(tail -5 "$W"/hosts/*/daemon.log)" >&2
  return 1
}
state_of() {  # state_of NAME
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts "$1") --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}
wait_state() {  # wait_state NAME STATE
  for _ in $(seq 1200); do
    [ "$(state_of "$1")" = "$2" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "daemon exited: $(tail -5 "$W/hosts/$1/daemon.log")" >&2; return 1; }
    sleep 0.5
  done
  echo "timed out waiting for $2" >&2
  return 1
}
median_ms() {  # median_ms CMD...: median wall time of RUNS runs, in ms
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
runs, cmd = int(sys.argv[1]), sys.argv[2:]
t = []
for _ in range(runs):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    t.append((time.perf_counter() - t0) * 1000)
print("%.1f" % statistics.median(t))
PY
}
peak_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

echo "== images: 1.0 (minimal), 2.0 = minimal + ${SIZE_MB} MB of /usr, 3.0 = minimal + $((2 * SIZE_MB)) MB"
new_btrfs build 4G
B=$W/fs/build
"$BALLAST" image build "$SRC/images/minimal.toml" --version 1.0 --output "$B/minimal-1.0" >/dev/null
"$BALLAST" send -f "$W/1.0.full" "$B/minimal-1.0"
for v in 2.0 3.0; do
  "$BALLAST" image build "$SRC/images/minimal.toml" --version "$v" --output "$B/minimal-$v" --parent "$B/minimal-1.0" >/dev/null
  btrfs -q subvolume snapshot "$B/minimal-$v" "$B/work-$v"
  mkdir -p "$B/work-$v/opt/bench"
  [ "$v" = 2.0 ] && mb=$SIZE_MB || mb=$((2 * SIZE_MB))
  copy_usr_tree "$mb" "$B/work-$v/opt/bench"
  btrfs -q subvolume snapshot -r "$B/work-$v" "$B/release-$v"
  echo "$v: $(du -s --apparent-size -m "$B/release-$v" | cut -f1) MB"
done

echo "== repository with 1.0, served by nginx over HTTPS"
mkdir -p "$W/www"
"$BALLAST" repo init "$W/www/repo" --keys "$W/keys" >/dev/null
"$BALLAST" repo add "$W/www/repo" --keys "$W/keys" --version 1.0 --subvolume "$B/minimal-1.0" --zstd-level 3 >/dev/null
nginx_https_start "$W" "$W/www"

echo "== a private D-Bus for the daemon and the CLI (a system bus's default policy, units/ policy)"
private_bus_start "$W/bus" || { echo "dbus-daemon did not start" >&2; exit 1; }
export DBUS_SYSTEM_BUS_ADDRESS=$PRIVATE_BUS_ADDRESS

echo "== host a: 1.0; the daemon with no check due for an hour"
new_host a 3G "$W/1.0.full" 1.0
configure a 1h
start_daemon a
sleep 3  # its first check at start-up
RSS_START=$(field "$DAEMON_PID" VmRSS)
ANON_START=$(field "$DAEMON_PID" RssAnon)
S0=$(switches "$DAEMON_PID")
sleep "$QUIET_S"
S1=$(switches "$DAEMON_PID")
QUIET_PER_MIN=$(python3 -c "print('%.1f' % (($S1 - $S0) * 60 / $QUIET_S))")
echo "start-up RSS ${RSS_START} kB; $((S1 - S0)) context switches in ${QUIET_S} s with no timer due"
stop_daemon

echo "== the daemon checking every ${INTERVAL} s, ${IDLE_CHECKS} checks of the unchanged repository"
configure a "${INTERVAL}s"
: > "$NGINX_LOG"
start_daemon a
checks_reach 2
C0=$(checks_seen)
S0=$(switches "$DAEMON_PID")
T0=$(date +%s.%N)
checks_reach $((C0 + IDLE_CHECKS))
S1=$(switches "$DAEMON_PID")
T1=$(date +%s.%N)
C1=$(checks_seen)
RSS_IDLE=$(field "$DAEMON_PID" VmRSS)
ANON_IDLE=$(field "$DAEMON_PID" RssAnon)
HWM_IDLE=$(field "$DAEMON_PID" VmHWM)
python3 - "$NGINX_LOG" > "$W/idle-check" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1])]
starts = [i for i, l in enumerate(lines) if l[0].endswith('/timestamp.json')]
# One whole check: from one timestamp request to the next.
a, b = starts[-2], starts[-1]
for uri, status, size in lines[a:b]:
    print(uri, status, size)
PY
IDLE_BYTES=$(awk '{s += $3} END {print s}' "$W/idle-check")
IDLE_REQS=$(wc -l < "$W/idle-check")
read -r PER_CHECK PER_MIN CHECKS_PER_MIN < <(python3 -c "
c = $C1 - $C0; s = $S1 - $S0; t = $T1 - $T0
print('%.1f %.1f %.1f' % (s / c, s * 60 / t, c * 60 / t))")
echo "after $((C1 - C0)) checks: RSS ${RSS_IDLE} kB (peak ${HWM_IDLE} kB); ${PER_CHECK} context switches a check"
echo "one idle check requested:"
sed 's/^/  /' "$W/idle-check"

echo "== release 2.0 (${SIZE_MB} MB of /usr) published; the running daemon stages it"
"$BALLAST" repo add "$W/www/repo" --keys "$W/keys" --version 2.0 --subvolume "$B/release-2.0" --zstd-level 3 >/dev/null
wait_state a waiting-to-reboot
HWM_2=$(field "$DAEMON_PID" VmHWM)
echo "staged; the daemon's peak RSS ${HWM_2} kB"

echo "== latency of ballast status and ballast rollback (no reboot), median of $RUNS"
# shellcheck disable=SC2046
STATUS_MS=$(median_ms "$BALLAST" $(host_opts a) status)
# rollback needs an older version than the booted one: boot 2.0 (the flow keeps waiting, as
# the manual strategy never rebooted it) and roll back to 1.0, the same each time.
stop_daemon
# shellcheck disable=SC2046
"$BALLAST" $(host_opts a) boot simulate-reboot >/dev/null
start_daemon a
# Starting on 2.0's trial boot, the daemon first verifies it, and a rollback asked for meanwhile
# is refused (daemon.busy); the first one that is taken ends that wait.
for _ in $(seq 240); do
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts a) rollback >/dev/null 2>&1 && break
  sleep 0.25
done
# shellcheck disable=SC2046
ROLLBACK_MS=$(median_ms "$BALLAST" $(host_opts a) rollback)
# shellcheck disable=SC2046
"$BALLAST" $(host_opts a) boot list | head -3
stop_daemon

echo "== release 3.0 ($((2 * SIZE_MB)) MB of /usr) on a fresh host b"
"$BALLAST" repo add "$W/www/repo" --keys "$W/keys" --version 3.0 --subvolume "$B/release-3.0" --zstd-level 3 >/dev/null
new_host b 3G "$W/1.0.full" 1.0
configure b "${INTERVAL}s"
start_daemon b
wait_state b waiting-to-reboot
HWM_3=$(field "$DAEMON_PID" VmHWM)
echo "staged; the daemon's peak RSS ${HWM_3} kB"
stop_daemon

echo "== reference: curl | zstd -dc | btrfs receive of the same releases (zstd -3 streams)"
new_btrfs ref 3G
ref_peak() {  # ref_peak VERSION: sum of the three processes' peak RSS, kB
  btrfs send -q "$B/release-$1" | zstd -q -3 -T0 -o "$W/www/release-$1.zst"
  mkdir -p "$W/fs/ref/$1"
  /usr/bin/time -v -o "$W/t.curl" curl -s --cacert "$NGINX_CA" "$NGINX_URL/release-$1.zst" |
    /usr/bin/time -v -o "$W/t.zstd" zstd -q -dc |
    /usr/bin/time -v -o "$W/t.recv" btrfs receive -q "$W/fs/ref/$1"
  echo $(($(peak_kb "$W/t.curl") + $(peak_kb "$W/t.zstd") + $(peak_kb "$W/t.recv")))
}
REF_2=$(ref_peak 2.0)
REF_3=$(ref_peak 3.0)

python3 - <<PY
mib = lambda kb: kb / 1024
rows = [
    ("RSS after start-up (MiB)", mib($RSS_START), "<= 8", None),
    ("  of which anonymous (heap, stacks) (MiB)", mib($ANON_START), "", None),
    ("RSS after $((C1 - C0)) idle checks, ${INTERVAL} s apart (MiB)", mib($RSS_IDLE), "<= 8", None),
    ("  of which anonymous (heap, stacks) (MiB)", mib($ANON_IDLE), "", None),
    ("wake-ups with no check due (switches/min)", $QUIET_PER_MIN, "0 (timers only)", None),
    ("wake-ups checking every ${INTERVAL} s (switches/min)", $PER_MIN, "per check: $PER_CHECK", None),
    ("bytes fetched by an idle check ($IDLE_REQS requests)", $IDLE_BYTES, "timestamp only", None),
    ("peak RSS staging 2.0, ${SIZE_MB} MB of files (MiB)", mib($HWM_2), "<= 64", $HWM_2 / $REF_2),
    ("peak RSS staging 3.0, $((2 * SIZE_MB)) MB of files (MiB)", mib($HWM_3), "<= 64", $HWM_3 / $REF_3),
    ("  reference curl|zstd -dc|btrfs receive, 2.0 (MiB)", mib($REF_2), "", None),
    ("  reference curl|zstd -dc|btrfs receive, 3.0 (MiB)", mib($REF_3), "", None),
    ("ballast status, median of $RUNS (ms)", $STATUS_MS, "<= 50", None),
    ("ballast rollback, no reboot, median of $RUNS (ms)", $ROLLBACK_MS, "<= 200", None),
]
print("\n%-58s %12s %16s %8s" % ("", "ballast", "goal", "vs ref"))
for name, value, goal, ratio in rows:
    v = "%12.1f" % value if isinstance(value, float) else "%12d" % value
    print("%-58s %s %16s %8s" % (name, v, goal, "" if ratio is None else "%.2f" % ratio))
print("(a check every ${INTERVAL} s stands in for hours of hourly checks: ${IDLE_CHECKS} checks)")
PY
