# Sourced by the benchmarks (after loop_btrfs.sh and nginx.sh): sandbox hosts of `ballast`, each a
# loop-backed Btrfs $W/fs/NAME with its ESP, EFI variables, state, config and run directory under
# $W/hosts/NAME, updating from the repository $W/www/repo that nginx serves. Needs $BALLAST and $W.
#   host_opts NAME                       the global options that address host NAME
#   new_host NAME SIZE STREAM VERSION    a host on a Btrfs of SIZE with the full send stream STREAM
#                                        installed as VERSION, booted and blessed
#   configure_host NAME INTERVAL [LINE…] its drop-in: the repository over HTTPS, checks every INTERVAL
#                                        without jitter, manual reboots, wariness 0, health checks
#                                        without failed units, no event sink; each LINE is added to
#                                        its last table, [report]
host_opts() {
  local h=$W/hosts/$1
  echo --sysroot "$W/fs/$1" --esp-path "$h/esp" --efivars-path "$h/efivars" --state-dir "$h/state" \
    --cmdline-path "$h/cmdline" --config-dir "$h/config.d"
}
new_host() {
  new_btrfs "$1" "$2"
  local h=$W/hosts/$1
  mkdir -p "$h/esp" "$h/efivars" "$h/state" "$h/config.d" "$h/run"
  : > "$h/cmdline"
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts "$1") install -f "$3" --version "$4" >/dev/null
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts "$1") boot simulate-reboot >/dev/null
  # shellcheck disable=SC2046
  "$BALLAST" $(host_opts "$1") boot bless >/dev/null
}
configure_host() {
  local name=$1 interval=$2
  shift 2
  {
    cat <<TOML
[repository]
url = "$NGINX_URL/repo"
root = "$W/www/repo/metadata/1.root.json"
ca_bundle = "$NGINX_CA"
[update]
check_interval = "$interval"
check_jitter = "0s"
[reboot]
strategy = "manual"
[node]
wariness = 0.0
[health]
check_failed_units = false
[report]
endpoint = ""
TOML
    local line
    for line in "$@"; do echo "$line"; done
  } > "$W/hosts/$name/config.d/10-bench.toml"
}
