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
