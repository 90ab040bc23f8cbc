#!/bin/sh
# Zoo member caddy-nginx: Caddy balancing three nginx nodes through a Toxiproxy server, all
# stock (Debian's caddy and nginx; the Toxiproxy server set-up builds):
#
#   entry 127.12.0.1    Caddy: HTTP 8080, HTTPS 8443 (L7; re-encrypts to the nodes verifying
#                       them against the cluster's CA; retries GETs on another node for 2 s;
#                       passive health (one failure keeps a node out 3 s) and active health
#                       checks of /health every 250 ms); its admin API on 127.12.0.1:2019
#   Toxiproxy 127.12.0.2:8474, proxies node<i>-http / node<i>-https on 127.12.2.i: the links
#                       between the balancer and the nodes, where network faults go
#   node i 127.12.1.i   nginx: HTTP 8080, HTTPS 8443; every answer carries X-Served-By: node<i>
#
#   cluster.sh up [CONFIGURATION]            start, or reconfigure (default: sound)
#   cluster.sh down                          stop everything, remove the run's directory
#   cluster.sh kill|pause|resume|restart NODE
#   cluster.sh add                           start node4 and add it to Caddy's upstreams
#                                            through the admin API; prints "node4"
#   cluster.sh remove NODE                   put Caddy's upstreams back, stop the node
#
# Configurations (what each is for is in member.yaml beside this file): sound, first,
# no_retry, bounded and new_node_unreachable (each node serves at most 50 requests a
# second), fast (the sound one, named for C13).
# Everything lives in $ZOO_CADDY_DIR (default /tmp/harness-zoo-caddy-nginx).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

DIR=${ZOO_CADDY_DIR:-/tmp/harness-zoo-caddy-nginx}
ENTRY=127.12.0.1
TOXIPROXY=127.12.0.2:8474
ADMIN=$ENTRY:2019
NODES="node1 node2 node3"
SPARE=node4
CONFIGURATIONS="sound first no_retry bounded fast new_node_unreachable"
RATE=50r/s   # what a node of the bounded configuration serves at most, the rest queued

node_ip() { echo "127.12.1.${1#node}"; }
link_ip() { echo "127.12.2.${1#node}"; }

make_certs() {  # the cluster's own CA, and a certificate per server
  servers="lb=$ENTRY"
  for node in $NODES $SPARE; do servers="$servers $node=$(node_ip "$node")"; done
  # shellcheck disable=SC2086 # a list of name=ip words
  "$HERE/../make-certs.sh" "$DIR" zoo-caddy-ca $servers
}

write_node() {  # NODE CONFIGURATION
  node=$1 ip=$(node_ip "$1") limit=""
  mkdir -p "$DIR/www"
  echo "hello from the orders service" >"$DIR/www/hello.txt"
  # a node of bounded capacity, as an application server's thread pool bounds it: nginx
  # serves at most $RATE and holds the rest in a queue (limit_req without nodelay)
  case $2 in bounded|new_node_unreachable) limit="limit_req zone=capacity burst=2000;" ;; esac
  cat >"$DIR/$node-nginx.conf" <<EOF
worker_processes 1;
pid $DIR/$node-nginx.pid;
error_log $DIR/$node-nginx.log;
events { worker_connections 1024; }
http {
  access_log off;
  limit_req_zone \$server_addr zone=capacity:1m rate=$RATE;
  server {
    listen $ip:8080;
    listen $ip:8443 ssl;
    ssl_certificate $DIR/$node.crt;
    ssl_certificate_key $DIR/$node.key;
    root $DIR/www;
    default_type text/plain;
    add_header X-Served-By $node always;
    location = /health { return 200 "up\n"; }
    location / { $limit try_files /hello.txt =404; }
  }
}
EOF
}

start_node() { nginx -c "$DIR/$1-nginx.conf" -p "$DIR" -e "$DIR/$1-nginx.log"; }

reload_node() { nginx -c "$DIR/$1-nginx.conf" -p "$DIR" -e "$DIR/$1-nginx.log" -s reload; }

# nginx's master and its worker: signal both (the worker does the serving)
node_pids() {
  master=$(cat "$DIR/$1-nginx.pid" 2>/dev/null) || return 0
  echo "$master $(pgrep -P "$master" 2>/dev/null || true)"
}

stop_node() {
  # shellcheck disable=SC2046 # a list of pids
  kill -KILL $(node_pids "$1") 2>/dev/null || true
  rm -f "$DIR/$1-nginx.pid"
}

write_caddy() {
  variant=$1 policy=round_robin try="lb_try_duration 2s
      lb_try_interval 50ms
      lb_retry_match {
        method GET
      }"
  [ "$variant" = first ] && policy=first
  [ "$variant" = no_retry ] && try="lb_try_duration 0"
  {
    printf '{\n  admin %s\n  auto_https off\n  storage file_system %s/caddy-data\n}\n' "$ADMIN" "$DIR"
    for proto in http https; do
      port=8080; [ $proto = https ] && port=8443
      upstreams=""
      for node in $NODES; do upstreams="$upstreams $proto://$(link_ip "$node"):$port"; done
      echo "$proto://$ENTRY:$port {"
      echo "  bind $ENTRY"
      [ $proto = https ] && echo "  tls $DIR/lb.crt $DIR/lb.key"
      cat <<EOF
  reverse_proxy$upstreams {
      lb_policy $policy
      $try
      fail_duration 3s
      max_fails 1
      health_uri /health
      health_interval 250ms
      health_timeout 200ms
      transport http {
        dial_timeout 300ms
        response_header_timeout 1s
EOF
      # a frozen node accepts the connection and never shakes hands: give up as on a dial
      [ $proto = https ] && printf '        tls_trusted_ca_certs %s/ca.pem\n        tls_server_name localhost\n        tls_timeout 300ms\n' "$DIR"
      printf '      }\n  }\n}\n'
    done
  } >"$DIR/Caddyfile"
}

wait_answer() {  # URL: until it answers anything at all (at most 5 s)
  for _ in $(seq 1 100); do
    curl -sk -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.05
  done
  echo "cluster.sh: nothing answers at $1" >&2; return 1
}

add_links() {  # NODE: its Toxiproxy proxies, between the balancer and it
  for port in 8080 8443; do
    proto=http; [ $port = 8443 ] && proto=https
    curl -sf -X POST "http://$TOXIPROXY/proxies" -d "{\"name\": \"$1-$proto\", \
\"listen\": \"$(link_ip "$1"):$port\", \"upstream\": \"$(node_ip "$1"):$port\"}" >/dev/null
  done
}

start_toxiproxy() {
  toxiproxy-server -host "${TOXIPROXY%:*}" -port "${TOXIPROXY#*:}" >"$DIR/toxiproxy.log" 2>&1 &
  echo $! >"$DIR/toxiproxy.pid"
  for _ in $(seq 1 100); do curl -sf "http://$TOXIPROXY/version" >/dev/null && break; sleep 0.05; done
  for node in $NODES; do add_links "$node"; done
}

# Caddy's upstreams where its admin API holds them: the Caddyfile's HTTP site is server srv0,
# the HTTPS one srv1, each a subroute around the reverse proxy (as `caddy adapt` shows)
upstreams() { echo "http://$ADMIN/config/apps/http/servers/$1/routes/0/handle/0/routes/0/handle/0/upstreams"; }

add() {
  variant=$(cat "$DIR/configuration")
  write_node "$SPARE" "$variant"
  start_node "$SPARE"
  wait_answer "http://$(node_ip "$SPARE"):8080/health" >&2
  add_links "$SPARE"
  port=8080
  # new_node_unreachable's operator registers the node at a port it does not listen on
  [ "$variant" = new_node_unreachable ] && port=8081
  for server in srv0:$port srv1:8443; do
    curl -sf -X POST -H "Content-Type: application/json" "$(upstreams "${server%:*}")" \
      -d "{\"dial\": \"$(link_ip "$SPARE"):${server#*:}\"}" >&2
  done
  echo "$SPARE"
}

remove() {  # NODE: the upstreams as they were, its links gone, the node stopped
  for server in srv0:8080 srv1:8443; do
    list=""
    for node in $NODES; do list="$list{\"dial\": \"$(link_ip "$node"):${server#*:}\"},"; done
    curl -sf -X PATCH -H "Content-Type: application/json" "$(upstreams "${server%:*}")" \
      -d "[${list%,}]" >&2
  done
  for proto in http https; do curl -sf -X DELETE "http://$TOXIPROXY/proxies/$1-$proto" >&2 || true; done
  stop_node "$1"
}

start_balancer() {
  write_caddy "$1"
  old=$(cat "$DIR/caddy.pid" 2>/dev/null || true)
  if [ -n "$old" ]; then
    kill -TERM "$old" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  fi
  # Caddy stays in the foreground: the script puts it in the background, as an operator's does
  XDG_DATA_HOME="$DIR" XDG_CONFIG_HOME="$DIR" \
    caddy run --config "$DIR/Caddyfile" --adapter caddyfile </dev/null >"$DIR/caddy.log" 2>&1 &
  echo $! >"$DIR/caddy.pid"
  wait_answer "http://$ENTRY:8080/health" && wait_answer "https://$ENTRY:8443/health"
}

case "${1:-}" in
  up)
    variant=${2:-sound}
    case " $CONFIGURATIONS " in *" $variant "*) ;;
      *) echo "cluster.sh: unknown configuration '$variant' ($CONFIGURATIONS)" >&2; exit 2 ;; esac
    if [ ! -f "$DIR/ca.pem" ]; then
      mkdir -p "$DIR"
      make_certs
      for node in $NODES; do write_node "$node" "$variant"; start_node "$node"; done
      start_toxiproxy
    else  # reconfigured: the nodes as this configuration has them
      for node in $NODES; do write_node "$node" "$variant"; reload_node "$node"; done
    fi
    echo "$variant" >"$DIR/configuration"
    start_balancer "$variant"
    ;;
  down)
    [ -d "$DIR" ] || exit 0
    for f in caddy toxiproxy; do kill -KILL "$(cat "$DIR/$f.pid" 2>/dev/null)" 2>/dev/null || true; done
    for node in $NODES $SPARE; do stop_node "$node"; done
    rm -rf "$DIR"
    ;;
  add) add ;;
  remove) remove "$2" ;;
  kill) stop_node "$2" ;;
  # shellcheck disable=SC2046 # a list of pids
  pause) kill -STOP $(node_pids "$2") ;;
  # shellcheck disable=SC2046
  resume) kill -CONT $(node_pids "$2") ;;
  restart) stop_node "$2"; start_node "$2" ;;
  *) echo "usage: cluster.sh up [$(echo $CONFIGURATIONS | tr ' ' '|')] | down | add | remove NODE | kill|pause|resume|restart NODE" >&2; exit 2 ;;
esac
