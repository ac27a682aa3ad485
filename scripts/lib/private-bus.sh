# A private dbus-daemon with a system bus's rules and the agent's policy from units/, for the demo
# and the benchmarks (the D-Bus tests' fixture includes the same policy file). Source it (bash), then:
#   private_bus_start DIR  writes DIR/bus.conf, starts dbus-daemon on DIR/socket in the background
#                          and waits for the socket. Sets PRIVATE_BUS_PID and PRIVATE_BUS_ADDRESS
#                          (unix:path=DIR/socket). Returns 1 if it does not come up.
#   private_bus_stop       stops it; safe when it never started or already stopped.
PRIVATE_BUS_PID=""
PRIVATE_BUS_ADDRESS=""
_private_bus_lib=$(dirname "$(realpath "${BASH_SOURCE[0]}")")

private_bus_start() {
  local dir=$1 top; top=$(realpath "$_private_bus_lib/../..")
  mkdir -p "$dir"
  cat > "$dir/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=$dir/socket</listen>
  <auth>EXTERNAL</auth>
  <include>$_private_bus_lib/system-bus-default-policy.conf</include>
  <include>$top/units/dev.ballast.Agent1.conf</include>
</busconfig>
XML
  dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>/dev/null &
  PRIVATE_BUS_PID=$!
  PRIVATE_BUS_ADDRESS=unix:path=$dir/socket
  local _
  for _ in $(seq 100); do
    [[ -S "$dir/socket" ]] && return 0
    kill -0 "$PRIVATE_BUS_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

private_bus_stop() {
  [[ -n "$PRIVATE_BUS_PID" ]] || return 0
  kill "$PRIVATE_BUS_PID" 2>/dev/null && wait "$PRIVATE_BUS_PID" 2>/dev/null
  PRIVATE_BUS_PID=""
  return 0
}
