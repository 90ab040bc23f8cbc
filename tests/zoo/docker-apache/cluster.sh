#!/bin/sh
# Zoo member docker-apache: three node containers, each running Debian's apache2, pure-ftpd
# and OpenSMTPD, behind an HAProxy on the host (L7 for HTTP and HTTPS, health checks every
# 200 ms; L4 for SMTP):
#
#   entry 127.13.0.1       HAProxy: HTTP 8080, HTTPS 8443 (mode http, round robin), SMTP 2525
#                          (mode tcp, by source address)
#   node i 127.13.1.i      the container zoo-apache-node<i>'s ports, published on loopback:
#                          HTTP 8080, HTTPS 8443 (apache2; /whoami.json names the node),
#                          FTP 2121 and passive 300i0-300i9 (pure-ftpd, anonymous),
#                          SMTP 2525 (OpenSMTPD, naming the node in its greeting)
#   network zoo-apache     198.18.12.0/24 (the containers' own addresses)
#
#   cluster.sh up [CONFIGURATION]     start (building the image once, from Debian packages),
#                                     or reconfigure the balancer (default: sound)
#   cluster.sh down                   remove the containers, the network and the run's files
#
# Nodes are controlled through the Docker engine (the topology's `control.docker`): a paused
# container is frozen, yet its published ports still accept connections (docker-proxy).
# Configurations (what breaks: member.yaml): sound, no_checks, smtp_failover.
set -eu

DIR=${ZOO_DOCKER_APACHE_DIR:-/tmp/harness-zoo-docker-apache}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../containers.sh"
PACKAGES="apache2 pure-ftpd opensmtpd"
IMAGE=harness-zoo/apache-node:$(echo "$PACKAGES" | sha256sum | cut -c1-12)  # the packages, no more: the start script is mounted
IMAGE_SETUP="a2enmod -q ssl >/dev/null && a2ensite -q default-ssl >/dev/null && useradd -d /srv/ftp -s /usr/sbin/nologin ftp && mkdir -p /srv/ftp/upload && chown ftp /srv/ftp/upload"
PREFIX=zoo-apache
HEALTH=/whoami.json
NETWORK=zoo-apache
SUBNET=198.18.12.0/24
ENTRY=127.13.0.1
NODES="node1 node2 node3"
CONFIGURATIONS="sound no_checks smtp_failover"

node_ip() { echo "127.13.1.${1#node}"; }
container_ip() { echo "198.18.12.1${1#node}"; }

make_certs() {  # the cluster's own CA, and a certificate per server
  servers="lb=$ENTRY"
  for node in $NODES; do servers="$servers $node=$(node_ip "$node")"; done
  # shellcheck disable=SC2086 # a list of name=ip words
  "$HERE/../make-certs.sh" "$DIR" zoo-docker-apache-ca $servers
}

start_node() {
  node=$1 ip=$(node_ip "$1") n=${1#node}
  docker run -d --name "$PREFIX-$node" --hostname "$node" --network $NETWORK \
    --ip "$(container_ip "$node")" --cap-add SYS_NICE --cap-add DAC_READ_SEARCH \
    -e NODE="$node" -e PASSIVE="300${n}0:300${n}9" \
    -v "$DIR/$node.crt:/etc/ssl/certs/node.crt:ro" -v "$DIR/$node.key:/etc/ssl/private/node.key:ro" \
    -v "$HERE/node-start.sh:/node-start.sh:ro" \
    -p "$ip:8080:80" -p "$ip:8443:443" -p "$ip:2121:21" -p "$ip:2525:25" \
    -p "$ip:300${n}0-300${n}9:300${n}0-300${n}9" \
    "$IMAGE" /node-start.sh >/dev/null
}

write_haproxy() {
  # HTTP and HTTPS in HTTP mode (L7: TLS ends here and is re-encrypted to the nodes, not
  # verified: the topology says tls.insecure), retried on another node on a refused
  # connection or a 1 s silence; `no_checks` has no health checks, retries or redispatch
  variant=$1 check="check inter 200 fall 1 rise 2" retry="option redispatch
  retries 3
  retry-on all-retryable-errors" server_timeout=1s
  [ "$variant" = no_checks ] && check="" && retry="retries 0" && server_timeout=30s
  {
    printf 'global\n  pidfile %s/haproxy.pid\n' "$DIR"
    printf 'defaults\n  mode http\n  timeout connect 300ms\n  timeout client 30s\n  timeout server %s\n' "$server_timeout"
    printf '  %s\n' "$retry"
    printf 'listen entry_http\n  bind %s:8080\n  balance roundrobin\n' "$ENTRY"
    for node in $NODES; do printf '  server %s %s:8080 %s\n' "$node" "$(node_ip "$node")" "$check"; done
    printf 'listen entry_https\n  bind %s:8443 ssl crt %s/lb.pem\n  balance roundrobin\n' "$ENTRY" "$DIR"
    for node in $NODES; do printf '  server %s %s:8443 ssl verify none %s\n' "$node" "$(node_ip "$node")" "$check"; done
    # SMTP at the cluster address, each client's sessions to one node (by source address);
    # a dead node's sessions fail, unless `smtp_failover` sends them to another node
    smtp_check="" smtp_retry="no option redispatch
  retries 0"
    [ "$variant" = smtp_failover ] && smtp_check="check inter 200 fall 1 rise 2" && smtp_retry="option redispatch
  retries 3"
    printf 'listen smtp_entry\n  mode tcp\n  bind %s:2525\n  balance source\n  %s\n' "$ENTRY" "$smtp_retry"
    for node in $NODES; do printf '  server %s %s:2525 %s\n' "$node" "$(node_ip "$node")" "$smtp_check"; done
  } >"$DIR/haproxy.cfg"
}

start_balancer() {
  old=$(cat "$DIR/haproxy.pid" 2>/dev/null || true)
  write_haproxy "$1"
  if [ -n "$old" ]; then
    kill -TERM "$old" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  fi
  haproxy -D -f "$DIR/haproxy.cfg"
}

case "${1:-}" in
  up)
    variant=${2:-sound}
    case " $CONFIGURATIONS " in *" $variant "*) ;;
      *) echo "cluster.sh: unknown configuration '$variant' ($CONFIGURATIONS)" >&2; exit 2 ;; esac
    if [ ! -f "$DIR/ca.pem" ]; then
      mkdir -p "$DIR"
      make_certs
      containers_up
    fi
    start_balancer "$variant"
    ;;
  down)
    containers_down
    [ -f "$DIR/haproxy.pid" ] && kill -TERM "$(cat "$DIR/haproxy.pid")" 2>/dev/null || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: cluster.sh up [$(echo $CONFIGURATIONS | tr ' ' '|')] | down" >&2; exit 2 ;;
esac
