# nginx serving a directory over HTTPS with a throwaway CA, for the demo and the benchmarks.
# Source it (bash), then:
#   nginx_https_start DIR ROOT  makes a CA and a server certificate for localhost/127.0.0.1 in DIR
#                               (DIR/ca.pem is the one to trust), DIR/nginx.conf and DIR/ngx/ (pid,
#                               error.log, access.log: "$request_uri $status $body_bytes_sent" per
#                               request), starts nginx in the background on a free loopback port
#                               serving ROOT and waits until it answers. Sets NGINX_PID, NGINX_URL
#                               (https://localhost:PORT), NGINX_CA, NGINX_LOG (the access log) and
#                               NGINX_HTTP_URL (http://127.0.0.1:PORT2: the same ROOT over plain
#                               HTTP, same log, for clients that cannot be told to trust a CA).
#                               Returns 1 if it does not come up.
#   nginx_stop                  stops it; safe when it never started or already stopped.
NGINX_PID=""
NGINX_URL=""
NGINX_CA=""
NGINX_LOG=""
NGINX_HTTP_URL=""

nginx_https_start() {
  local dir=$1 root=$2 port http_port
  # EC keys: instant to generate; the CA lives only as long as the directory.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -days 1 -subj "/CN=ballast throwaway CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/srv.key" -out "$dir/srv.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/srv.ext"
  openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/srv.pem" \
    -days 1 -extfile "$dir/srv.ext" 2>/dev/null
  read -r port http_port < <(python3 -c 'import socket
a, b = socket.socket(), socket.socket(); a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
  mkdir -p "$dir/ngx"
  cat > "$dir/nginx.conf" <<NGX
daemon off; master_process on; worker_processes 2; user root;
pid $dir/ngx/pid; error_log $dir/ngx/error.log warn;
events { worker_connections 256; }
http {
  default_type application/octet-stream; sendfile on; tcp_nopush on;
  log_format bytes '\$request_uri \$status \$body_bytes_sent';
  access_log $dir/ngx/access.log bytes;
  client_body_temp_path $dir/ngx/b; proxy_temp_path $dir/ngx/p; fastcgi_temp_path $dir/ngx/f; uwsgi_temp_path $dir/ngx/u; scgi_temp_path $dir/ngx/s;
  server { listen 127.0.0.1:$port ssl http2; ssl_certificate $dir/srv.pem; ssl_certificate_key $dir/srv.key; root $root; }
  server { listen 127.0.0.1:$http_port; root $root; }
}
NGX
  nginx -p "$dir/ngx" -c "$dir/nginx.conf" -e "$dir/ngx/error.log" &
  NGINX_PID=$!
  NGINX_URL="https://localhost:$port"
  NGINX_CA="$dir/ca.pem"
  NGINX_LOG="$dir/ngx/access.log"
  NGINX_HTTP_URL="http://127.0.0.1:$http_port"
  local _
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$NGINX_CA" "$NGINX_URL/" && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "nginx did not come up on $NGINX_URL:" >&2
  cat "$dir/ngx/error.log" >&2 2>/dev/null
  return 1
}

nginx_stop() {
  [[ -n "$NGINX_PID" ]] || return 0
  kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=""
  return 0
}
