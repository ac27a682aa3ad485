# Sourced by the benchmarks: nginx over HTTPS on a free localhost port with a throwaway CA.
#   start_https_nginx WORK_DIR ROOT  serves ROOT; sets NGINX_URL (https://localhost:PORT),
#                                    NGINX_CA (the CA to trust), NGINX_LOG (access log, one
#                                    "URI STATUS BODY_BYTES" line a request), NGINX_PID
#   stop_nginx                       for the caller's cleanup trap; safe when not started
NGINX_PID=""

start_https_nginx() {
  local w=$1 root=$2 port
  mkdir -p "$w/ngx"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$w/ca.key" -out "$w/ca.pem" \
    -days 1 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$w/srv.key" -out "$w/srv.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$w/srv.ext"
  openssl x509 -req -in "$w/srv.csr" -CA "$w/ca.pem" -CAkey "$w/ca.key" -CAcreateserial -out "$w/srv.pem" -days 1 \
    -extfile "$w/srv.ext" 2>/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$w/nginx.conf" <<NGX
daemon off; master_process on; worker_processes 2; user root;
pid $w/ngx/pid; error_log $w/ngx/error.log warn;
events { worker_connections 256; }
http {
  default_type application/octet-stream; sendfile on; tcp_nopush on;
  log_format bytes '\$request_uri \$status \$body_bytes_sent';
  access_log $w/ngx/access.log bytes;
  client_body_temp_path $w/ngx/b; proxy_temp_path $w/ngx/p; fastcgi_temp_path $w/ngx/f; uwsgi_temp_path $w/ngx/u; scgi_temp_path $w/ngx/s;
  server { listen 127.0.0.1:$port ssl http2; ssl_certificate $w/srv.pem; ssl_certificate_key $w/srv.key; root $root; }
}
NGX
  nginx -p "$w/ngx" -c "$w/nginx.conf" -e "$w/ngx/error.log" &
  NGINX_PID=$!
  NGINX_URL="https://localhost:$port"
  NGINX_CA=$w/ca.pem
  NGINX_LOG=$w/ngx/access.log
  for _ in $(seq 100); do curl -s -o /dev/null --cacert "$NGINX_CA" "$NGINX_URL/" && return 0; sleep 0.1; done
  echo "nginx did not start: $(cat "$w/ngx/error.log")" >&2
  return 1
}

stop_nginx() {
  [ -n "$NGINX_PID" ] || return 0
  kill "$NGINX_PID" 2>/dev/null
  wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=""
}
