# Sourced by the benchmarks: loop-backed Btrfs file systems in the caller's work directory $W.
#   new_btrfs NAME SIZE   makes $W/NAME.img of SIZE, a Btrfs on it, mounted at $W/fs/NAME
#   btrfs_teardown        unmounts every $W/fs/* and detaches the loop devices (for the EXIT trap)
LOOPS=()
new_btrfs() {
  truncate -s "$2" "$W/$1.img"
  local l
  l=$(losetup -f --show "$W/$1.img")
  LOOPS+=("$l")
  mkfs.btrfs -q "$l" >/dev/null 2>&1
  mkdir -p "$W/fs/$1"
  mount "$l" "$W/fs/$1"
}
btrfs_teardown() {
  local m l
  for m in "$W"/fs/*; do mountpoint -q "$m" && umount "$m"; done
  for l in "${LOOPS[@]}"; do losetup -d "$l"; done
  LOOPS=()
}
