# Sourced by the benchmarks: a tree of real files copied from /usr, the same for every run on a
# machine (every third regular file in a sorted walk, none over 16 MiB, up to the size).
#   copy_usr_tree SIZE_MB DEST   copies the files into DEST (a directory that exists), keeping
#                                their paths (DEST/usr/...)
copy_usr_tree() {
  local size_mb=$1 dest=$2 list
  list=$(mktemp)
  python3 - "$size_mb" > "$list" <<'PY'
import os, sys
limit = int(sys.argv[1]) << 20
files = []
for root, dirs, fs in os.walk('/usr'):
    dirs.sort()
    for f in sorted(fs):
        p = os.path.join(root, f)
        if os.path.islink(p) or not os.path.isfile(p) or p.startswith('/usr/local'):
            continue
        files.append((p, os.path.getsize(p)))
total = 0
for p, s in files[::3]:  # every third file: a spread over all of /usr
    if s > (16 << 20) or total + s > limit:
        continue
    total += s
    print(p)
PY
  tar -cf - -T "$list" 2>/dev/null | tar -xf - -C "$dest"
  rm -f "$list"
}

#   change_files ROOT K            changes 5 % of the regular files under ROOT, a different 5 % for
#                                  each K (1, 2, …): of the sorted paths, every 20th from index
#                                  (K-1) mod 20 gets 4 KiB rewritten in the middle and a line appended
change_files() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, k = sys.argv[1], int(sys.argv[2])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if os.path.isfile(os.path.join(d, f)))
changed = paths[(k - 1) % 20::20]
for i, p in enumerate(changed):
    with open(p, 'r+b') as f:
        size = os.path.getsize(p)
        f.seek(size // 2)
        f.write(os.urandom(min(4096, size // 4)))
        f.seek(0, 2)
        f.write(b'changed %d %d\n' % (k, i))
print(len(changed), 'of', len(paths), 'files changed', file=sys.stderr)
PY
}

#   make_release_trees SIZE_MB DIR   on a Btrfs DIR: DIR/work (a subvolume), the read-only
#                                    snapshots DIR/1 (copy_usr_tree) and DIR/2 (5 % of the files
#                                    changed: change_files … 1), each with usr/lib/os-release naming its
#                                    IMAGE_VERSION, as `ballast repo add` checks
make_release_trees() {
  local size_mb=$1 dir=$2
  btrfs -q subvolume create "$dir/work"
  copy_usr_tree "$size_mb" "$dir/work"
  mkdir -p "$dir/work/usr/lib"
  printf 'ID=bench\nIMAGE_VERSION=1\n' > "$dir/work/usr/lib/os-release"
  btrfs -q subvolume snapshot -r "$dir/work" "$dir/1"
  change_files "$dir/work" 1
  # A new file, as before: os-release moves to a new inode at the end of the stream.
  rm -f "$dir/work/usr/lib/os-release"
  printf 'ID=bench\nIMAGE_VERSION=2\n' > "$dir/work/usr/lib/os-release"
  btrfs -q subvolume snapshot -r "$dir/work" "$dir/2"
}

#   make_image_series SIZE_MB IMAGE DIR N   on a Btrfs DIR: releases DIR/1 … DIR/N (read-only
#                                    snapshots), each the image subvolume IMAGE (built as version 1)
#                                    with copy_usr_tree under opt/bench; release K has IMAGE_VERSION=K
#                                    in usr/lib/os-release (a new file each time) and, from 2 on,
#                                    change_files opt/bench K-1 on top of release K-1: each release
#                                    changes another 5 % of the files of the one before
make_image_series() {
  local size_mb=$1 image=$2 dir=$3 n=$4 k
  btrfs -q subvolume snapshot "$image" "$dir/work"
  mkdir -p "$dir/work/opt/bench"
  copy_usr_tree "$size_mb" "$dir/work/opt/bench"
  for ((k = 1; k <= n; k++)); do
    ((k == 1)) || change_files "$dir/work/opt/bench" $((k - 1)) 2>/dev/null
    sed "s/^IMAGE_VERSION=.*/IMAGE_VERSION=$k/" "$dir/work/usr/lib/os-release" > "$dir/os-release.new"
    rm -f "$dir/work/usr/lib/os-release"
    mv "$dir/os-release.new" "$dir/work/usr/lib/os-release"
    btrfs -q subvolume snapshot -r "$dir/work" "$dir/$k"
  done
}
