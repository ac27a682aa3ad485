#!/bin/bash
# Benchmark of publishing against OSTree, on a ~200 MB tree of /usr files and a change of 5 % of
# its files (the same trees as bench/fetch): per round, in alternating order,
#   ballast: `repo add` of v1 (full), then of v2 (full + delta from v1), into a new repository;
#   OSTree:  `commit` of v1, then `commit` of v2 + `static-delta generate --from=v1`, into a new
#            archive repository;
# and once, OSTree's full `static-delta generate --empty` of v2 (what a fresh install fetches).
# Prints medians of the wall times, their ratios, and the bytes a host fetches: the full stream
# (ballast: v2's full artifact and manifest; OSTree: the --empty delta plus its fallback objects)
# and the delta from v1; and ballast's v2 time against OSTree's plus its --empty delta's.
# Usage: bench/publish/run.sh [BUILD_DIR] [ROUNDS] (defaults: build, 3). Needs root.
# Extra `repo add` options (e.g. --full-level 19) come from REPO_ADD_OPTS, for v1 alone from V1_OPTS
# and for v2 alone from V2_OPTS. With V2_OPTS=--no-full, v2 has no full stream and its full bytes
# are what a new host fetches instead: v1's full stream, the delta and both manifests.
set -euo pipefail
shopt -s inherit_errexit  # a failed step inside $(…) ends the run
set -E
trap 'echo "bench/publish: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
BUILD=$(realpath "${1:-build}")
ROUNDS=${2:-3}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number" >&2; exit 2; }
BALLAST=$BUILD/agent/ballast
SIZE_MB=${TREE_MB:-200}
read -r -a EXTRA <<< "${REPO_ADD_OPTS:-}"
read -r -a EXTRA_V1 <<< "${V1_OPTS:-}"
read -r -a EXTRA_V2 <<< "${V2_OPTS:-}"
HERE=$(dirname "$(realpath "$0")")
source "$HERE/../lib/usr_tree.sh"
[ -x "$BALLAST" ] || { echo "no $BALLAST; build first" >&2; exit 2; }
command -v ostree >/dev/null || apt-get install -y -q ostree >/dev/null
command -v ostree >/dev/null || { echo "ostree is missing (apt-get install ostree)" >&2; exit 2; }

W=$(mktemp -d /tmp/ballast-bench-publish-XXXXXX)
LOOP=""
cleanup() {
  set +e
  mountpoint -q "$W/mnt" && umount "$W/mnt"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

truncate -s 4G "$W/img"
LOOP=$(losetup -f --show "$W/img")
mkfs.btrfs -q "$LOOP" >/dev/null 2>&1
mkdir -p "$W/mnt" && mount "$LOOP" "$W/mnt"
M=$W/mnt
mkdir -p "$M/src"

echo "== building a ${SIZE_MB} MB tree from /usr"
make_release_trees "$SIZE_MB" "$M/src"
sync

now() { date +%s.%N; }
run_ballast() {  # prints "t_v1,t_v2"; leaves the repository in $W/b
  rm -rf "$W/b" "$W/keys"
  "$BALLAST" repo init "$W/b" --keys "$W/keys" >/dev/null
  local t0 t1 t2
  t0=$(now)
  "$BALLAST" --json repo add "$W/b" --keys "$W/keys" --version 1 --subvolume "$M/src/1" "${EXTRA[@]}" "${EXTRA_V1[@]}" > "$W/b1.json"
  t1=$(now)
  "$BALLAST" --json repo add "$W/b" --keys "$W/keys" --version 2 --subvolume "$M/src/2" --delta-from 1 "${EXTRA[@]}" \
    "${EXTRA_V2[@]}" > "$W/b.json"
  t2=$(now)
  echo "$(echo "$t1 - $t0" | bc),$(echo "$t2 - $t1" | bc)"
}
run_ostree() {  # prints "t_v1,t_v2"; leaves the repository in $W/o
  rm -rf "$W/o"
  ostree --repo="$W/o" init --mode=archive >/dev/null
  local t0 t1 t2
  t0=$(now)
  ostree --repo="$W/o" commit --branch=b --subject=v1 --tree=dir="$M/src/1" --no-xattrs >/dev/null
  t1=$(now)
  ostree --repo="$W/o" commit --branch=b --subject=v2 --tree=dir="$M/src/2" --no-xattrs >/dev/null
  ostree --repo="$W/o" static-delta generate --from=b^ --to=b >/dev/null 2>&1
  t2=$(now)
  echo "$(echo "$t1 - $t0" | bc),$(echo "$t2 - $t1" | bc)"
}

B=() O=()
for ((r = 1; r <= ROUNDS; r++)); do
  sync
  if ((r % 2)); then
    echo "== round $r of $ROUNDS: ballast, then OSTree"
    B+=("$(run_ballast)"); O+=("$(run_ostree)")
  else
    echo "== round $r of $ROUNDS: OSTree, then ballast"
    O+=("$(run_ostree)"); B+=("$(run_ballast)")
  fi
  echo "   ballast ${B[-1]} s, OSTree ${O[-1]} s (v1, v2)"
done

# What a host fetches: a delta's superblock and parts, plus the fallback objects it names.
deltas_bytes() { du -sb "$W/o/deltas" | cut -f1; }
fallback_bytes() { ostree --repo="$W/o" static-delta show "$1" | sed -n 's/^Total Fallback Size: \([0-9]*\).*/\1/p'; }
FROM_V1=$(ostree --repo="$W/o" static-delta list | grep -- -)
DELTA_PARTS=$(deltas_bytes)
O_DELTA=$((DELTA_PARTS + $(fallback_bytes "$FROM_V1")))
echo "== OSTree's full delta of v2 (static-delta generate --empty), once"
T0=$(now)
ostree --repo="$W/o" static-delta generate --empty --to=b >/dev/null 2>&1
T1=$(now)
O_EMPTY_T=$(echo "$T1 - $T0" | bc)
EMPTY=$(ostree --repo="$W/o" static-delta list | grep -v -- - | grep -v '^$')
O_FULL=$(($(deltas_bytes) - DELTA_PARTS + $(fallback_bytes "$EMPTY")))
MANIFEST=$(find "$W/b/targets/releases" -path '*/2/*manifest.json' | head -1)
B_MANIFEST=$(stat -c %s "$MANIFEST")
B_MANIFEST_V1=$(stat -c %s "$(find "$W/b/targets/releases" -path '*/1/*manifest.json' | head -1)")

python3 - "$W/b.json" "$B_MANIFEST" "$O_FULL" "$O_DELTA" "$O_EMPTY_T" "${B[*]}" "${O[*]}" "$W/b1.json" "$B_MANIFEST_V1" <<'PY'
import json, statistics, sys
add = json.load(open(sys.argv[1]))
manifest, o_full, o_delta, o_empty_t = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
b = [list(map(float, r.split(','))) for r in sys.argv[6].split()]
o = [list(map(float, r.split(','))) for r in sys.argv[7].split()]
add_v1, manifest_v1 = json.load(open(sys.argv[8])), int(sys.argv[9])
arts = {a['from']: a for a in add['artifacts']}
b_delta = arts['1']['size'] + manifest
if '' in arts:
    b_full, full_what = arts['']['size'] + manifest, "bytes, full (v2 full + manifest | --empty delta)"
else:  # published with --no-full: a new host takes v1's full stream and the delta (its plan)
    v1_full = next(a for a in add_v1['artifacts'] if a['from'] == '')['size']
    b_full, full_what = v1_full + manifest_v1 + b_delta, "bytes, install (v1 full, delta, manifests | --empty)"
m = lambda rs, i: statistics.median(r[i] for r in rs)
print("\n%-52s %12s %12s %7s" % ("", "ballast", "OSTree", "ratio"))
print("%-52s %12.2f %12.2f %7.2f" % ("publish v1, s (repo add | commit)", m(b, 0), m(o, 0), m(b, 0) / m(o, 0)))
print("%-52s %12.2f %12.2f %7.2f" % ("publish v2 + delta, s (repo add | commit + delta)", m(b, 1), m(o, 1), m(b, 1) / m(o, 1)))
print("%-52s %12d %12d %7.3f" % (full_what, b_full, o_full, b_full / o_full))
print("%-52s %12d %12d %7.3f" % ("bytes, delta from v1 (+ manifest | delta)", b_delta, o_delta, b_delta / o_delta))
print("%-52s %12.2f %12.2f %7.2f" % ("publish v2 + delta, s (repo add | + --empty delta)", m(b, 1), m(o, 1) + o_empty_t,
                                     m(b, 1) / (m(o, 1) + o_empty_t)))
print("OSTree's --empty delta of v2 (once) took %.2f s: the line above adds it to the median, as the full"
      % o_empty_t)
print("  bytes line compares against it; ballast reused %d chunks in v2" % add.get('reused_chunks', 0))
print("targets: publish v2 + delta ratio <= 1.0, bytes ratios <= 0.9")
PY
