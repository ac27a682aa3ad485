#!/bin/bash
# Times `btrfs receive` against `ballast receive` on the same full and incremental streams of a
# ~200 MB tree of real files (copied from /usr) and a change to 5 % of its files, on a fresh
# loop-backed Btrfs. Each timing includes `sync -f`; the two tools alternate which goes first.
#
#   bench/receive/run.sh [--ballast PATH] [--rounds N] [--size-mb N]
#
# Needs root. Prints every round, the medians and the ratio ballast/btrfs (target <= 0.8).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ballast="$here/../../build/agent/ballast"
rounds=5
size_mb=200
while [ $# -gt 0 ]; do
  case "$1" in
    --ballast) ballast=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    *) echo "usage: $0 [--ballast PATH] [--rounds N] [--size-mb N]" >&2; exit 2 ;;
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
# time_one TOOL STREAM → seconds on stdout
time_one() {
  local t0 t1
  t0=$(now)
  if [ "$1" = btrfs ]; then btrfs receive -q -f "$2" "$m/recv" >/dev/null
  else "$ballast" receive -f "$2" "$m/recv" >/dev/null; fi
  sync -f "$m"
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

declare -a bf bi of oi
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then order="btrfs ballast"; else order="ballast btrfs"; fi
  for tool in $order; do
    clean
    f=$(time_one "$tool" "$work/full.stream")
    i=$(time_one "$tool" "$work/incr.stream")
    if [ "$tool" = btrfs ]; then bf+=("$f"); bi+=("$i"); else of+=("$f"); oi+=("$i"); fi
    printf 'round %d  %-8s full %6.3f s  incremental %6.3f s\n' "$r" "$tool" "$f" "$i"
  done
done
clean

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mbf=$(median "${bf[@]}"); mbi=$(median "${bi[@]}"); mof=$(median "${of[@]}"); moi=$(median "${oi[@]}")
echo
printf 'median full:        btrfs receive %6.3f s   ballast receive %6.3f s   ratio %.2f\n' "$mbf" "$mof" "$(echo "$mof / $mbf" | bc -l)"
printf 'median incremental: btrfs receive %6.3f s   ballast receive %6.3f s   ratio %.2f\n' "$mbi" "$moi" "$(echo "$moi / $mbi" | bc -l)"
