#!/bin/sh
# Zoo member haproxy-nginx: HAProxy balancing nginx nodes on loopback, scaled out the way
# operators do it: a node is started, then added to the running balancer through HAProxy's
# runtime API (its admin socket, spoken with socat), and removed again the same way. All
# stock: Debian's haproxy, nginx and socat.
#
#   entry 127.16.0.1   HAProxy: HTTP 8080 (L7, round robin, health checks of /health every
#                      250 ms, a failed request retried on another node); runtime API on
#                      $DIR/haproxy.sock (level admin)
#   node i 127.16.1.i  nginx: HTTP 8080, /hello.txt; every answer carries X-Served-By: node<i>
#
#   cluster.sh up [CONFIGURATION]       start (default: bounded)
#   cluster.sh down                     stop everything, remove the run's directory
#   cluster.sh add                      start node4, add it to HAProxy; prints "node4"
#   cluster.sh remove NODE              take NODE out of HAProxy (drained, deleted), stop it
#   cluster.sh kill|restart NODE
#
# Configurations (what each is for is in member.yaml beside this file): bounded, fast,
# never_enabled. Everything lives in $ZOO_HAPROXY_DIR (default /tmp/harness-zoo-haproxy-nginx).
set -eu

DIR=${ZOO_HAPROXY_DIR:-/tmp/harness-zoo-haproxy-nginx}
ENTRY=127.16.0.1
NODES="node1 node2 node3"
SPARE=node4
CONFIGURATIONS="bounded fast never_enabled"
RATE=50r/s   # what a node of the bounded configuration serves at most, the rest queued

node_ip() { echo "127.16.1.${1#node}"; }

write_node() {  # NODE CONFIGURATION
  node=$1 ip=$(node_ip "$1") limit=""
  mkdir -p "$DIR/www"
  echo "hello from the orders service" >"$DIR/www/hello.txt"
  # a node with a bounded capacity, as an application server's thread pool bounds it: nginx
  # serves at most $RATE and holds the rest in a queue (limit_req without nodelay delays)
  [ "$2" = fast ] || limit="limit_req zone=capacity burst=2000;"
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
    root $DIR/www;
    add_header X-Served-By $node always;
    location = /health { return 200 "up\n"; }
    location / { $limit }
  }
}
EOF
}

start_node() { nginx -c "$DIR/$1-nginx.conf" -p "$DIR" -e "$DIR/$1-nginx.log"; }

stop_node() {
  master=$(cat "$DIR/$1-nginx.pid" 2>/dev/null) || return 0
  # shellcheck disable=SC2046 # the master and its worker
  kill -KILL "$master" $(pgrep -P "$master" 2>/dev/null || true) 2>/dev/null || true
  rm -f "$DIR/$1-nginx.pid"
}

api() { echo "$*" | socat stdio "unix-connect:$DIR/haproxy.sock"; }

write_haproxy() {
  {
    cat <<EOF
global
  stats socket $DIR/haproxy.sock mode 600 level admin
  pidfile $DIR/haproxy.pid
  maxconn 4096
defaults
  mode http
  timeout connect 300ms
  timeout client 30s
  timeout server 5s
  timeout check 500ms
  retries 3
  option redispatch 1
frontend entry
  bind $ENTRY:8080
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /health
EOF
    for node in $NODES; do
      echo "  server $node $(node_ip "$node"):8080 check inter 250ms fall 1 rise 2"
    done
  } >"$DIR/haproxy.cfg"
}

wait_answer() {  # URL: until it answers (at most 5 s)
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.05
  done
  echo "cluster.sh: nothing answers at $1" >&2; return 1
}

add() {
  configuration=$(cat "$DIR/configuration")
  write_node "$SPARE" "$configuration"
  start_node "$SPARE"
  wait_answer "http://$(node_ip "$SPARE"):8080/health" >&2
  api "add server nodes/$SPARE $(node_ip "$SPARE"):8080 check inter 250ms fall 1 rise 2" >&2
  api "enable health nodes/$SPARE" >&2
  # a server added at run time starts in maintenance: never_enabled's operator stops here
  [ "$configuration" = never_enabled ] || api "enable server nodes/$SPARE" >&2
  echo "$SPARE"
}

remove() {
  api "disable server nodes/$1" >&2
  api "shutdown sessions server nodes/$1" >&2
  for _ in $(seq 1 50); do  # deleted once its last connection has gone
    api "del server nodes/$1" | grep -q "Server deleted" && break
    sleep 0.1
  done
  stop_node "$1"
}

case "${1:-}" in
  up)
    configuration=${2:-bounded}
    case " $CONFIGURATIONS " in *" $configuration "*) ;;
      *) echo "cluster.sh: unknown configuration '$configuration' ($CONFIGURATIONS)" >&2; exit 2 ;; esac
    "$0" down
    mkdir -p "$DIR"
    echo "$configuration" >"$DIR/configuration"
    for node in $NODES; do write_node "$node" "$configuration"; start_node "$node"; done
    write_haproxy
    haproxy -D -f "$DIR/haproxy.cfg" </dev/null >"$DIR/haproxy.log" 2>&1
    wait_answer "http://$ENTRY:8080/hello.txt"
    ;;
  down)
    [ -d "$DIR" ] || exit 0
    kill -KILL "$(cat "$DIR/haproxy.pid" 2>/dev/null)" 2>/dev/null || true
    for node in $NODES $SPARE; do stop_node "$node"; done
    rm -rf "$DIR"
    ;;
  add) add ;;
  remove) remove "$2" ;;
  kill) stop_node "$2" ;;
  restart) stop_node "$2"; start_node "$2" ;;
  *) echo "usage: cluster.sh up [$(echo $CONFIGURATIONS | tr ' ' '|')] | down | add | remove NODE | kill|restart NODE" >&2; exit 2 ;;
esac
