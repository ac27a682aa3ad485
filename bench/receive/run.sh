#!/bin/bash
# Times `btrfs receive` against `ballast receive` on the same full and incremental streams of a
# ~200 MB tree of real files (copied from /usr) and a change to 5 % of its files, on a fresh
# loop-backed Btrfs. Each timing includes `sync -f`; the tools alternate which goes first.
# The incremental is also received by `ballast receive --exact-atime`, which applies every utimes
# as btrfs receive does (by default ballast leaves an inode whose mtime a delta keeps with the
# parent's atime; most of this stream's utimes are directories the build machine only read).
#
#   bench/receive/run.sh [--ballast PATH] [--rounds N] [--size-mb N] [--drop-caches]
#
# Needs root. Prints every round (wall and CPU seconds of the receiving process), then per stream
# the median and spread (min-max) of each tool, the ratio of the medians (target <= 0.8 for the
# incremental, <= 0.7 for the full) and the median of the per-round ratios (each round's pair ran
# back to back, so it shares that moment's load), and the start-up time of each binary alone.
# --drop-caches: before every timed receive, flush and drop the page, dentry and inode caches
# (both tools then read the parent's metadata cold, as on a host after a reboot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ballast="$here/../../build/agent/ballast"
rounds=9
drop_caches=0
size_mb=200
while [ $# -gt 0 ]; do
  case "$1" in
    --ballast) ballast=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    --drop-caches) drop_caches=1; shift ;;
    *) echo "usage: $0 [--ballast PATH] [--rounds N] [--size-mb N] [--drop-caches]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
[ -x "$ballast" ] || { echo "no ballast binary at $ballast (build first, or --ballast)" >&2; exit 2; }
ballast=$(readlink -f "$ballast")

work=$(mktemp -d "${TMPDIR:-/tmp}/ballast-bench-receive-XXXXXX")
loop=""
cleanup() {
  set +e
  if mountpoint -q "$work/mnt"; then umount "$work/mnt" || umount -l "$work/mnt"; fi
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP  # a signal ends the script (cleanup alone would let it run on); EXIT cleans up

truncate -s 4G "$work/img"
loop=$(losetup -f --show "$work/img")
mkfs.btrfs -q "$loop"
mkdir "$work/mnt"
mount "$loop" "$work/mnt"
m="$work/mnt"

echo "building a ${size_mb} MB tree from /usr ..."
btrfs -q subvolume create "$m/src"
limit=$((size_mb * 1024 * 1024))
# Every k-th regular file of /usr (stable order), k chosen to land near the size: a realistic
# mix of many small and some large files, with their directories.
find /usr -xdev -type f -size -20M -readable -print0 2>/dev/null | sort -z > "$work/all-files"
python3 - "$work/all-files" "$limit" "$m/src" <<'PY'
import os, shutil, sys
files = [f for f in open(sys.argv[1], 'rb').read().split(b'\0') if f]
sizes = []
for f in files:
    try:
        sizes.append(os.lstat(f).st_size)
    except OSError:
        sizes.append(0)
limit = int(sys.argv[2]); dest = sys.argv[3].encode()
stride = max(1, sum(sizes) // limit)
total = count = 0
for i in range(0, len(files), stride):
    if total >= limit:
        break
    target = dest + files[i]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        shutil.copy2(files[i], target, follow_symlinks=False)
    except OSError:
        continue
    total += sizes[i]
    count += 1
print(f"copied {count} files, {total/1e6:.0f} MB")
PY
btrfs -q subvolume snapshot -r "$m/src" "$m/snap1"
python3 - "$m/src" <<'PY'
import os, sys
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
changed = files[::20]
for i, f in enumerate(changed):
    with open(f, 'ab') as fh:  # a change the size of a small patch, at the end of every 20th file
        fh.write(os.urandom(4096))
print(f"changed {len(changed)} of {len(files)} files")
PY
btrfs -q subvolume snapshot -r "$m/src" "$m/snap2"
btrfs send -q -f "$work/full.stream" "$m/snap1"
btrfs send -q -p "$m/snap1" -f "$work/incr.stream" "$m/snap2"
echo "full stream $(($(stat -c %s "$work/full.stream") / 1000000)) MB, incremental $(($(stat -c %s "$work/incr.stream") / 1000)) kB"
mkdir "$m/recv"

now() { date +%s.%N; }
clean() {
  for s in "$m"/recv/*; do [ -e "$s" ] && btrfs -q subvolume delete "$s"; done
  btrfs -q subvolume sync "$m" >/dev/null 2>&1 || true
  sync -f "$m"
}
# Both tools start from the same state: everything flushed, and with --drop-caches nothing cached.
settle() {
  sync -f "$m"
  if ((drop_caches)); then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}
# time_one TOOL STREAM → "wall cpu" seconds on stdout: wall includes the `sync -f` after the
# receive; cpu is the user + system time of the receiving process alone.
time_one() {
  local t0 t1 cpu
  settle
  t0=$(now)
  if [ "$1" = btrfs ]; then cpu=$(/usr/bin/time -f '%U %S' btrfs receive -q -f "$2" "$m/recv" 2>&1 >/dev/null | tail -1)
  elif [ "$1" = exact ]; then
    cpu=$(/usr/bin/time -f '%U %S' "$ballast" receive --exact-atime -f "$2" "$m/recv" 2>&1 >/dev/null | tail -1)
  else cpu=$(/usr/bin/time -f '%U %S' "$ballast" receive -f "$2" "$m/recv" 2>&1 >/dev/null | tail -1); fi
  sync -f "$m"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$cpu" | awk '{print $1 + $2}')"
}
# Process start-up alone (dynamic loading, static initialisers): part of every CLI timing above.
startup_one() {
  local t0 t1
  t0=$(now)
  if [ "$1" = btrfs ]; then btrfs --version >/dev/null; else "$ballast" --version >/dev/null; fi
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

declare -a bf bi of oi bfc bic ofc oic rf ri bs os ei eic re
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then order="btrfs ballast exact"; else order="exact ballast btrfs"; fi
  for tool in $order; do
    clean
    if [ "$tool" = exact ]; then  # the full stream is received as by `ballast` (no utimes is skipped in it)
      time_one ballast "$work/full.stream" >/dev/null
      read -r i ic < <(time_one exact "$work/incr.stream")
      ei+=("$i"); eic+=("$ic")
      printf 'round %d  %-8s incremental --exact-atime %6.3f s (cpu %5.2f)\n' "$r" ballast "$i" "$ic"
      continue
    fi
    read -r f fc < <(time_one "$tool" "$work/full.stream")
    read -r i ic < <(time_one "$tool" "$work/incr.stream")
    s=$(startup_one "$tool")
    if [ "$tool" = btrfs ]; then bf+=("$f"); bi+=("$i"); bfc+=("$fc"); bic+=("$ic"); bs+=("$s")
    else of+=("$f"); oi+=("$i"); ofc+=("$fc"); oic+=("$ic"); os+=("$s"); fi
    printf 'round %d  %-8s full %6.3f s (cpu %5.2f)  incremental %6.3f s (cpu %5.2f)  start-up %5.3f s\n' \
      "$r" "$tool" "$f" "$fc" "$i" "$ic" "$s"
  done
  rf+=("$(echo "${of[r]} / ${bf[r]}" | bc -l)")
  ri+=("$(echo "${oi[r]} / ${bi[r]}" | bc -l)")
  re+=("$(echo "${ei[r]} / ${bi[r]}" | bc -l)")
done
clean

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.3f-%.3f", lo, hi}'; }
report() {  # report LABEL btrfs-walls ballast-walls per-round-ratios btrfs-cpus ballast-cpus (names of arrays)
  local -n b=$2 o=$3 q=$4 bc_=$5 oc=$6
  local mb mo
  mb=$(median "${b[@]}"); mo=$(median "${o[@]}")
  printf '%-12s btrfs receive %6.3f s (%s)   ballast receive %6.3f s (%s)   ratio of medians %.2f   median ratio per round %.2f (%s)\n' \
    "$1:" "$mb" "$(spread "${b[@]}")" "$mo" "$(spread "${o[@]}")" "$(echo "$mo / $mb" | bc -l)" \
    "$(median "${q[@]}")" "$(spread "${q[@]}")"
  printf '%-12s cpu of the receiving process: btrfs receive %5.3f s   ballast receive %5.3f s\n' "" \
    "$(median "${bc_[@]}")" "$(median "${oc[@]}")"
}
echo
echo "medians of $rounds rounds (spread min-max), wall time including sync -f$( ((drop_caches)) && echo ', caches dropped before each receive'):"
report full bf of rf bfc ofc
report incremental bi oi ri bic oic
report "incremental, --exact-atime" bi ei re bic eic
printf 'start-up alone (--version): btrfs %5.3f s   ballast %5.3f s (median)\n' "$(median "${bs[@]}")" "$(median "${os[@]}")"
