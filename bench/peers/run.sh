#!/bin/bash
# ballast, OSTree and casync side by side in one run, on the same trees and one local nginx whose
# access log counts every byte each client downloads (issue 21 item 4).
#
# Trees: releases 1 … N (RELEASES, default 11) of the minimal image with a ~TREE_MB (default 200)
# tree of /usr files under /opt/bench; each release changes another 5 % of the files of the one
# before (bench/lib/usr_tree.sh: make_image_series).
# Publishing, every release in turn, timed with its peak RSS:
#   ballast  `repo add` (release 1: the full stream; then the full stream + a delta from the release
#            before), TUF-signed;
#   OSTree   `commit` into an archive repository (+ `static-delta generate --from=<previous>`),
#            `summary -u`;
#   casync   `make` of a directory index into one chunk store.
# Fetching, each from cold caches, timed with its peak RSS and the bytes nginx sent:
#   a fresh install of release N: `ballast fetch` (full stream) | `ostree pull` into an empty bare
#   repository + `checkout -H` | `casync extract`;
#   a host LAG releases behind (LAGS, default "1 3 10"): a sandbox host with release N-LAG installed,
#   booted and blessed runs `ballast daemon --once` (refresh TUF, plan the cheapest by bytes among a
#   direct delta, a chain of deltas and the full stream, stage, deploy) | a bare OSTree repository
#   holding N-LAG pulls N (its static delta when one exists from N-LAG, else the objects it lacks)
#   + `checkout -H` | `casync extract --seed=<the N-LAG tree>`.
# Usage: bench/peers/run.sh [BUILD_DIR] (default: build). Needs root. TREE_MB, RELEASES, LAGS,
# KEEP_WORKDIR (keep the work directory, for a look after a failure) and REPO_ADD_OPTS (more
# `repo add` options, e.g. "--full-level 19") come from the environment.
set -euo pipefail
shopt -s inherit_errexit  # a failed step inside $(…) ends the run
set -E
trap 'echo "bench/peers: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
BUILD=$(realpath "${1:-build}")
BALLAST=$BUILD/agent/ballast
SIZE_MB=${TREE_MB:-200}
N=${RELEASES:-11}
read -r -a LAG_LIST <<< "${LAGS:-1 3 10}"
read -r -a EXTRA <<< "${REPO_ADD_OPTS:-}"
HERE=$(dirname "$(realpath "$0")")
SRC=$(realpath "$HERE/../..")
source "$SRC/scripts/lib/nginx.sh"
source "$HERE/../lib/usr_tree.sh"
source "$HERE/../lib/loop_btrfs.sh"
source "$HERE/../lib/sandbox_host.sh"
[[ "$N" =~ ^[0-9]+$ ]] && ((N >= 2)) || { echo "RELEASES must be a number >= 2" >&2; exit 2; }
for l in "${LAG_LIST[@]}"; do
  [[ "$l" =~ ^[0-9]+$ ]] && ((l >= 1 && l < N)) || { echo "each of LAGS must be 1 … RELEASES-1 ($l)" >&2; exit 2; }
done
[ -x "$BALLAST" ] || { echo "no $BALLAST; build first" >&2; exit 2; }
for t in ostree casync; do
  command -v $t >/dev/null || apt-get install -y -q $t >/dev/null
  command -v $t >/dev/null || { echo "$t is missing (apt-get install $t)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || apt-get install -y -q time >/dev/null

W=$(mktemp -d /tmp/ballast-bench-peers-XXXXXX)
cleanup() {
  set +e
  nginx_stop
  btrfs_teardown
  [ -n "${KEEP_WORKDIR:-}" ] && echo "kept $W (unmounted; the loop images are files in it)" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # a signal ends the script; EXIT cleans up

cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
RESULTS=$W/results.tsv
# measure TOOL WHAT LABEL OUT -- CMD…: runs CMD under /usr/bin/time with its stdout in OUT and
# appends "TOOL WHAT LABEL time seconds peak_kB" (several rows of one label add up: seconds summed,
# the peak is the largest)
measure() {
  local tool=$1 what=$2 label=$3 out=$4
  shift 5
  /usr/bin/time -f '%e %M' -o "$W/time.out" "$@" > "$out" 2>> "$W/cmd.log" ||
    { echo "failed: $* (exit $?):" >&2; tail -20 "$W/cmd.log" >&2; return 1; }
  printf '%s\t%s\t%s\ttime\t%s\t%s\n' "$tool" "$what" "$label" $(tail -1 "$W/time.out") >> "$RESULTS"
}
served() { awk '{s+=$3} END {print s+0}' "$NGINX_LOG"; }
# bytes TOOL WHAT LABEL: appends what nginx sent since the log was last emptied, and empties it
bytes() { printf '%s\t%s\t%s\tbytes\t%s\n' "$1" "$2" "$3" "$(served)" >> "$RESULTS"; : > "$NGINX_LOG"; }

new_btrfs src 12G
S=$W/fs/src
echo "== $N releases of the minimal image with a ${SIZE_MB} MB tree of /usr under /opt/bench"
"$BALLAST" image build "$SRC/images/minimal.toml" --version 1 --output "$S/image" >/dev/null
mkdir -p "$S/rel"
make_image_series "$SIZE_MB" "$S/image" "$S/rel" "$N"
echo "release 1: $(du -s --apparent-size -m "$S/rel/1" | cut -f1) MB, $(find "$S/rel/1" -type f | wc -l) files"

WWW=$W/www
mkdir -p "$WWW/casync"
echo "== publishing releases 1 … $N: ballast repo add, ostree commit (+ static-delta), casync make"
"$BALLAST" repo init "$WWW/repo" --keys "$W/keys" >/dev/null
ostree --repo="$WWW/ostree" init --mode=archive
declare -A COMMIT
for ((k = 1; k <= N; k++)); do
  delta=()
  ((k == 1)) || delta=(--delta-from $((k - 1)))
  # Alternating which tool goes first, so that none always meets another's dirty page cache.
  order=(ballast ostree casync)
  ((k % 2)) || order=(casync ostree ballast)
  for t in "${order[@]}"; do
    sync
    case $t in
      ballast)
        measure ballast publish "$k" "$W/add-$k.json" -- "$BALLAST" --json repo add "$WWW/repo" --keys "$W/keys" \
          --version "$k" --subvolume "$S/rel/$k" "${delta[@]}" "${EXTRA[@]}" ;;
      ostree)
        measure ostree publish "$k" /dev/null -- ostree --repo="$WWW/ostree" commit --branch=bench --subject="$k" \
          --tree=dir="$S/rel/$k" --no-xattrs
        COMMIT[$k]=$(ostree --repo="$WWW/ostree" rev-parse bench)
        ((k == 1)) || measure ostree publish "$k" /dev/null -- ostree --repo="$WWW/ostree" static-delta generate \
          --from="${COMMIT[$((k - 1))]}" --to="${COMMIT[$k]}"
        # The summary names the branch's head and indexes the static deltas for clients.
        measure ostree publish "$k" /dev/null -- ostree --repo="$WWW/ostree" summary -u ;;
      casync)
        # Not as a subvolume: extracting a read-only subvolume's flags into a directory fails
        # ("File exists"); every client gets a plain directory tree, as OSTree's checkout is.
        measure casync publish "$k" /dev/null -- casync make --without=subvolume --without=subvolume-ro \
          --store="$WWW/casync/default.castr" \
          "$WWW/casync/$k.caidx" "$S/rel/$k" ;;
    esac
  done
  echo "   release $k published: $(awk -F'\t' -v k="$k" '$2 == "publish" && $3 == k {t[$1] += $5}
    END {printf "ballast %.1f s, OSTree %.1f s, casync %.1f s", t["ballast"], t["ostree"], t["casync"]}' "$RESULTS")"
done

echo "== nginx: HTTPS for ballast and OSTree (throwaway CA), plain HTTP for casync (it has no option to trust a CA)"
nginx_https_start "$W" "$WWW"
HTTP_URL=$NGINX_HTTP_URL
CA=$NGINX_CA

new_btrfs client 12G
C=$W/fs/client
ostree_client() {  # ostree_client DIR: an empty bare repository with the remote "origin"
  ostree --repo="$1" init --mode=bare
  ostree --repo="$1" remote add --no-gpg-verify --set=tls-ca-path="$CA" origin "$NGINX_URL/ostree"
}
check_release() {  # check_release DIR K: the tree in DIR is release K
  grep -qx "IMAGE_VERSION=$2" "$1/usr/lib/os-release" ||
    { echo "$1 is not release $2: $(grep IMAGE_VERSION "$1/usr/lib/os-release")" >&2; return 1; }
}

echo "== a fresh install of release $N"
: > "$NGINX_LOG"
mkdir -p "$C/ballast-full"
cold
measure ballast install "$N" /dev/null -- "$BALLAST" --state-dir "$W/state-full" fetch --repo "$NGINX_URL/repo" \
  --root "$WWW/repo/metadata/1.root.json" --ca-bundle "$CA" --version "$N" "$C/ballast-full"
bytes ballast install "$N"
check_release "$C/ballast-full/$N" "$N"
ostree_client "$C/ostree-full"
cold
measure ostree install "$N" /dev/null -- ostree --repo="$C/ostree-full" pull origin bench
measure ostree install "$N" /dev/null -- ostree --repo="$C/ostree-full" checkout -H "${COMMIT[$N]}" "$C/ostree-full-co"
bytes ostree install "$N"
check_release "$C/ostree-full-co" "$N"
cold
measure casync install "$N" /dev/null -- casync extract --store="$HTTP_URL/casync/default.castr" \
  "$HTTP_URL/casync/$N.caidx" "$C/casync-full"
bytes casync install "$N"
check_release "$C/casync-full" "$N"

for lag in "${LAG_LIST[@]}"; do
  base=$((N - lag))
  echo "== a host $lag release(s) behind: release $base installed, updating to $N"
  "$BALLAST" send -f "$W/base.full" "$S/rel/$base"
  new_host "lag-$lag" 4G "$W/base.full" "$base"
  rm -f "$W/base.full"
  configure_host "lag-$lag" 1h
  : > "$NGINX_LOG"
  cold
  # shellcheck disable=SC2046
  measure ballast "lag" "$lag" "$W/once-$lag.out" -- "$BALLAST" $(host_opts "lag-$lag") daemon --once --no-dbus \
    --run-dir "$W/hosts/lag-$lag/run"
  bytes ballast "lag" "$lag"
  python3 - "$W/hosts/lag-$lag/state/flow.json" "$N" "$lag" >> "$W/plans" <<'PY'
import json, sys
flow, n, lag = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
plan = flow.get("plan") or {}
if plan.get("version") != n:
    sys.exit("the host %s behind did not stage %s: %s" % (lag, n, json.dumps(flow)))
links = plan.get("chain") or []
what = ("chain of %d deltas" % len(links)) if links else ("delta from " + plan["deltaFrom"]) if plan.get("deltaFrom") else "full stream"
print("%s\t%s\t%d" % (lag, what, plan["downloadBytes"]))
PY
  ostree_client "$C/ostree-$lag"
  # The host's copy of the branch is at release $base, as if it had pulled it then. (The branch is
  # "bench", not "b": OSTree reads a hex-looking rev as a checksum prefix first.)
  ostree --repo="$C/ostree-$lag" pull origin "${COMMIT[$base]}" >/dev/null
  ostree --repo="$C/ostree-$lag" refs --create=origin:bench "${COMMIT[$base]}"
  ostree --repo="$C/ostree-$lag" checkout -H "${COMMIT[$base]}" "$C/ostree-$lag-co-$base"
  : > "$NGINX_LOG"
  cold
  measure ostree "lag" "$lag" /dev/null -- ostree --repo="$C/ostree-$lag" pull origin bench
  measure ostree "lag" "$lag" /dev/null -- ostree --repo="$C/ostree-$lag" checkout -H "${COMMIT[$N]}" "$C/ostree-$lag-co-$N"
  bytes ostree "lag" "$lag"
  check_release "$C/ostree-$lag-co-$N" "$N"
  cp -a "$S/rel/$base" "$C/casync-$lag-$base"  # the tree the host runs, its seed
  : > "$NGINX_LOG"
  cold
  measure casync "lag" "$lag" /dev/null -- casync extract --store="$HTTP_URL/casync/default.castr" \
    --seed="$C/casync-$lag-$base" "$HTTP_URL/casync/$N.caidx" "$C/casync-$lag-$N"
  bytes casync "lag" "$lag"
  check_release "$C/casync-$lag-$N" "$N"
done

python3 - "$RESULTS" "$W/plans" "$N" "$SIZE_MB" "$W"/add-*.json <<'PY'
import collections, json, statistics, sys
rows, plans_file, n, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
secs, peak, nbytes = collections.defaultdict(float), collections.defaultdict(int), {}
for line in open(rows):
    f = line.rstrip('\n').split('\t')
    key = tuple(f[:3])
    if f[3] == 'time':
        secs[key] += float(f[4]); peak[key] = max(peak[key], int(f[5]))
    else:
        nbytes[key] = int(f[4])
plans = {l.split('\t')[0]: l.rstrip('\n').split('\t') for l in open(plans_file)}
deltas, fulls = {}, {}
for p in sys.argv[5:]:
    add = json.load(open(p))
    for a in add['artifacts']:
        (fulls if a['from'] == '' else deltas)[int(add['version'])] = a['size']
tools = ['ballast', 'ostree', 'casync']
def row(label, vals, fmt):
    b = vals[0]
    cells = ''.join(fmt % v for v in vals)
    ratios = ''.join('%9.2f' % (b / v) if v else '%9s' % '-' for v in vals[1:])
    print('%-44s%s%s' % (label, cells, ratios))
print('\n%-44s%14s%14s%14s%9s%9s' % ('', 'ballast', 'OSTree', 'casync', 'b/OSTree', 'b/casync'))
later = [str(k) for k in range(2, n + 1)]
row('publish release 1, s', [secs[(t, 'publish', '1')] for t in tools], '%14.2f')
row('publish a later release (median of %d), s' % len(later),
    [statistics.median(secs[(t, 'publish', k)] for k in later) for t in tools], '%14.2f')
row('publish, peak RSS MiB (largest)', [max(peak[(t, 'publish', k)] for k in ['1'] + later) / 1024 for t in tools], '%14.1f')
row('fresh install of %d: bytes' % n, [nbytes[(t, 'install', str(n))] for t in tools], '%14d')
row('fresh install of %d: s' % n, [secs[(t, 'install', str(n))] for t in tools], '%14.2f')
row('fresh install of %d: peak RSS MiB' % n, [peak[(t, 'install', str(n))] / 1024 for t in tools], '%14.1f')
for lag in sorted(plans, key=int):
    L = int(lag)
    row('%s behind: bytes' % lag, [nbytes[(t, 'lag', lag)] for t in tools], '%14d')
    row('%s behind: s' % lag, [secs[(t, 'lag', lag)] for t in tools], '%14.2f')
    row('%s behind: peak RSS MiB' % lag, [peak[(t, 'lag', lag)] / 1024 for t in tools], '%14.1f')
print()
for lag in sorted(plans, key=int):
    L = int(lag)
    combined = sum(deltas[k] for k in range(n - L + 1, n + 1))
    got = nbytes[('ballast', 'lag', lag)]
    print('%s behind: ballast planned a %s of %d bytes; it downloaded %d bytes in all (TUF metadata and manifests '
          'included) = %.3f x the %d releases\' combined deltas (%d bytes), %.3f x OSTree' % (
              lag, plans[lag][1], int(plans[lag][2]), got, got / combined, L, combined, got / nbytes[('ostree', 'lag', lag)]))
print('ballast full stream of release %d: %d bytes; deltas: median %d bytes' % (n, fulls[n], statistics.median(deltas.values())))
print('goals (issue 21): publish a later release <= 1.0 x OSTree; full and delta bytes <= 0.9 x OSTree; '
      'a host 1-10 behind <= 1.1 x the combined deltas and <= 0.5 x OSTree')
PY
echo "tree: ${SIZE_MB} MB of /usr per release, $N releases; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "what differs: ballast checks TUF signatures (ed25519) and every chunk's hash, and stages a bootable deployment;"
echo "OSTree checks object checksums (GPG off here) and checks out with hardlinks; casync checks chunk hashes, no"
echo "signature, and reaches nginx over plain HTTP; OSTree's time includes 'checkout -H', casync's is its extract."
