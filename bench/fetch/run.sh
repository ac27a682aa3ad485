#!/bin/bash
# Benchmark of chunked artifacts against the reference tools, on a ~200 MB tree of /usr files
# and a change of 5 % of its files:
#   1. bytes on the wire for the full stream and the delta: `ballast fetch` (chunks + manifest
#      + TUF metadata, from nginx's access log) vs `btrfs send | zstd -19` of the same subvolumes;
#   2. wall time of `ballast fetch` from a local nginx (HTTPS) vs
#      `curl | zstd -dc | btrfs receive` of the same stream from the same nginx.
# Usage: bench/fetch/run.sh [BUILD_DIR] [ROUNDS] (defaults: build, 3). Needs root. Prints ratios;
# the wall times are medians over the rounds.
set -euo pipefail
BUILD=$(realpath "${1:-build}")
ROUNDS=${2:-3}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number" >&2; exit 2; }
BALLAST=$BUILD/agent/ballast
LEVEL=${ZSTD_LEVEL:-19}
SIZE_MB=${TREE_MB:-200}
HERE=$(dirname "$(realpath "$0")")
source "$HERE/../../scripts/lib/nginx.sh"
source "$HERE/../lib/usr_tree.sh"
[ -x "$BALLAST" ] || { echo "no $BALLAST; build first" >&2; exit 2; }

W=$(mktemp -d /tmp/ballast-bench-fetch-XXXXXX)
SHM=$(mktemp -d /dev/shm/ballast-bench-fetch-XXXXXX)  # tmpfs: streams that stay in RAM
LOOP=""
cleanup() {
  set +e
  nginx_stop
  mountpoint -q "$W/mnt" && umount "$W/mnt"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$W" "$SHM"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # a signal ends the script; EXIT cleans up

truncate -s 4G "$W/img"
LOOP=$(losetup -f --show "$W/img")
mkfs.btrfs -q "$LOOP" >/dev/null 2>&1
mkdir -p "$W/mnt" && mount "$LOOP" "$W/mnt"
M=$W/mnt
mkdir -p "$M/src" "$M/dst" "$M/ref"

echo "== building a ${SIZE_MB} MB tree from /usr"
make_release_trees "$SIZE_MB" "$M/src"
du -sh --apparent-size "$M/src/1"

echo "== reference: btrfs send | zstd -$LEVEL"
mkdir -p "$W/www"
btrfs send -q "$M/src/1" | zstd -q -$LEVEL -T0 -o "$W/www/full.zst"
btrfs send -q -p "$M/src/1" "$M/src/2" | zstd -q -$LEVEL -T0 -o "$W/www/delta.zst"
REF_FULL=$(stat -c %s "$W/www/full.zst")
REF_DELTA=$(stat -c %s "$W/www/delta.zst")

echo "== ballast repo add (zstd -$LEVEL)"
"$BALLAST" repo init "$W/www/repo" --keys "$W/keys" >/dev/null
T0=$(date +%s.%N)
"$BALLAST" repo add "$W/www/repo" --keys "$W/keys" --version 1 --subvolume "$M/src/1" --zstd-level "$LEVEL"
"$BALLAST" repo add "$W/www/repo" --keys "$W/keys" --version 2 --subvolume "$M/src/2" --delta-from 1 --zstd-level "$LEVEL"
T1=$(date +%s.%N)
echo "publishing took $(echo "$T1 - $T0" | bc) s"

echo "== nginx over HTTPS with a throwaway CA"
nginx_https_start "$W" "$W/www"
cd "$W"
URL=$NGINX_URL

served() { awk '{s+=$3} END {print s+0}' "$NGINX_LOG"; }
now() { date +%s.%N; }

# Each round starts from empty destinations, a new state dir (no trusted metadata beyond the
# root, no chunk cache) and cold caches, so every round does the same work; the
# figures are medians over the rounds (single runs spread by about ±0.1 s on these machines).
fresh_dest() {
  local d
  for d in "$M"/dst/n/* "$M"/dst/* "$M"/ref/n/* "$M"/ref/*; do
    [ -d "$d" ] && btrfs -q subvolume show "$d" >/dev/null 2>&1 && btrfs -q subvolume delete "$d"
  done
  btrfs -q subvolume sync "$M"
  mkdir -p "$M/dst" "$M/ref"
}
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
TIMES=()
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r of $ROUNDS: ballast fetch (full, then delta), then the reference"
  fresh_dest
  rm -rf "$W/state"
  cold
  : > "$NGINX_LOG"
  T0=$(now)
  "$BALLAST" --state-dir "$W/state" fetch --repo "$URL/repo" --root "$W/www/repo/metadata/1.root.json" --ca-bundle ca.pem --version 1 "$M/dst" >/dev/null
  T1=$(now)
  B_FULL=$(served)
  : > "$NGINX_LOG"
  mkdir -p "$M/dst/n"
  cold
  T2=$(now)
  "$BALLAST" --state-dir "$W/state" fetch --repo "$URL/repo" --root "$W/www/repo/metadata/1.root.json" --ca-bundle ca.pem --version 2 --from-subvolume "$M/dst/1" "$M/dst/n" >/dev/null
  T3=$(now)
  B_DELTA=$(served)

  cold
  T4=$(now)
  curl -s --cacert ca.pem "$URL/full.zst" | zstd -q -dc | btrfs receive -q "$M/ref"
  T5=$(now)
  mkdir -p "$M/ref/n"
  cold
  T6=$(now)
  curl -s --cacert ca.pem "$URL/delta.zst" | zstd -q -dc | btrfs receive -q "$M/ref/n"
  T7=$(now)
  TIMES+=("$T0,$T1,$T2,$T3,$T4,$T5,$T6,$T7")
done

diff -r --no-dereference "$M/src/2" "$M/dst/n/2" >/dev/null && echo "ballast delta result identical to the source (diff -r)"

# The floor under any fetch: applying the same streams with nothing to download, verify or
# decompress (the decompressed streams wait in RAM), from the same cold caches.
zstd -q -dc "$W/www/full.zst" > "$SHM/full.stream"
zstd -q -dc "$W/www/delta.zst" > "$SHM/delta.stream"
FLOORS=()
for ((r = 1; r <= ROUNDS; r++)); do
  echo "== round $r of $ROUNDS: ballast receive alone, streams in RAM"
  fresh_dest
  cold
  T0=$(now)
  "$BALLAST" receive "$M/dst" < "$SHM/full.stream" >/dev/null
  T1=$(now)
  mkdir -p "$M/dst/n"
  cold
  T2=$(now)
  "$BALLAST" receive "$M/dst/n" < "$SHM/delta.stream" >/dev/null
  T3=$(now)
  FLOORS+=("$T0,$T1,$T2,$T3")
done

python3 - "$REF_FULL" "$REF_DELTA" "$B_FULL" "$B_DELTA" "${FLOORS[*]}" "${TIMES[@]}" <<'PY'
import statistics, sys
rf, rd, bf, bd = map(int, sys.argv[1:5])
floors = [list(map(float, r.split(','))) for r in sys.argv[5].split()]
rounds = [list(map(float, r.split(','))) for r in sys.argv[6:]]
def med(a, b, rs=rounds): return statistics.median(t[b] - t[a] for t in rs)
fb, db, fr, dr = med(0, 1), med(2, 3), med(4, 5), med(6, 7)
for i, t in enumerate(rounds, 1):
    print("round %d: full %.2f s vs %.2f s, delta %.2f s vs %.2f s" % (i, t[1]-t[0], t[5]-t[4], t[3]-t[2], t[7]-t[6]))
print("\n%-38s %14s %14s %8s" % ("", "ballast", "reference", "ratio"))
print("%-38s %14d %14d %8.3f" % ("bytes on the wire, full", bf, rf, bf / rf))
print("%-38s %14d %14d %8.3f" % ("bytes on the wire, delta", bd, rd, bd / rd))
print("%-38s %14.2f %14.2f %8.3f" % ("wall time s, full (median)", fb, fr, fb / fr))
print("%-38s %14.2f %14.2f %8.3f" % ("wall time s, delta (median)", db, dr, db / dr))
print("targets: bytes ratio <= 1.02, time ratio <= 0.5")
ff, fd = med(0, 1, floors), med(2, 3, floors)
print("\nfloor: ballast receive alone, stream in RAM (median)  full %.2f s = %.2f x reference, delta %.2f s = %.2f x reference"
      % (ff, ff / fr, fd, fd / dr))
PY
