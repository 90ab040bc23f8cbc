#!/bin/sh
# Zoo member varnish-lighttpd: three node containers, each running Debian's lighttpd, vsftpd
# and Exim, behind a Varnish on the host (HTTP only: Varnish does not speak TLS):
#
#   entry 127.15.0.1       Varnish: HTTP 8080 (round robin, probes every 200 ms, a failed
#                          fetch retried on another node), no caching (every request passes)
#   node i 127.15.1.i      the container zoo-varnish-node<i>'s ports, published on loopback:
#                          HTTP 8080 (lighttpd; the X-Backend header names the node),
#                          FTP 2121 and passive 300i0-300i9 (vsftpd, anonymous uploads),
#                          SMTP 2525 (Exim, naming the node in its greeting)
#   network zoo-varnish    198.18.13.0/24 (the containers' own addresses)
#
#   cluster.sh up [CONFIGURATION]     start (building the image once, from Debian packages),
#                                     or reconfigure the balancer (default: sound)
#   cluster.sh down                   remove the containers, the network and the run's files
#
# Nodes are controlled through the Docker engine (the topology's `control.docker`).
# Configurations (what breaks: member.yaml): sound, hash, no_retry.
set -eu

DIR=${ZOO_VARNISH_DIR:-/tmp/harness-zoo-varnish-lighttpd}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../containers.sh"
PACKAGES="lighttpd vsftpd exim4-daemon-light"
IMAGE=harness-zoo/lighttpd-node:$(echo "$PACKAGES" | sha256sum | cut -c1-12)  # the packages, no more: the start script is mounted
IMAGE_SETUP="mkdir -p /srv/ftp/upload && chown ftp /srv/ftp/upload"
PREFIX=zoo-varnish
HEALTH=/index.txt
NETWORK=zoo-varnish
SUBNET=198.18.13.0/24
ENTRY=127.15.0.1
NODES="node1 node2 node3"
CONFIGURATIONS="sound hash no_retry"

node_ip() { echo "127.15.1.${1#node}"; }
container_ip() { echo "198.18.13.1${1#node}"; }

start_node() {
  node=$1 ip=$(node_ip "$1") n=${1#node}
  docker run -d --name "$PREFIX-$node" --hostname "$node" --network $NETWORK \
    --ip "$(container_ip "$node")" -e NODE="$node" -e PASSIVE="300${n}0:300${n}9" \
    -v "$HERE/node-start.sh:/node-start.sh:ro" \
    -p "$ip:8080:80" -p "$ip:2121:21" -p "$ip:2525:25" \
    -p "$ip:300${n}0-300${n}9:300${n}0-300${n}9" \
    "$IMAGE" /node-start.sh >/dev/null
}

write_vcl() {
  # sound: round robin over healthy nodes (a probe every 200 ms, sick at the first miss),
  # a fetch that fails (refused, 500 ms without a first byte, a 5xx) retried on the next
  # node; `hash` sends each URL to one node; `no_retry` has no probes and no retries
  variant=$1 director=round_robin pick="vdir.backend()" probe=".probe = health;" retries=2
  [ "$variant" = hash ] && director=hash pick="vdir.backend(bereq.url)"
  [ "$variant" = no_retry ] && probe="" && retries=0
  {
    printf 'vcl 4.1;\nimport directors;\n\n'
    if [ -n "$probe" ]; then  # (VCL refuses a probe no backend uses)
      printf 'probe health {\n  .url = "/index.txt";\n  .interval = 200ms;\n  .timeout = 150ms;\n'
      printf '  .window = 2;\n  .threshold = 2;\n  .initial = 2;\n}\n\n'
    fi
    for node in $NODES; do
      printf 'backend %s {\n  .host = "%s";\n  .port = "8080";\n  %s\n' "$node" "$(node_ip "$node")" "$probe"
      printf '  .connect_timeout = 300ms;\n  .first_byte_timeout = 500ms;\n  .between_bytes_timeout = 500ms;\n}\n\n'
    done
    printf 'sub vcl_init {\n  new vdir = directors.%s();\n' "$director"
    for node in $NODES; do
      if [ "$director" = hash ]; then printf '  vdir.add_backend(%s, 1);\n' "$node"
      else printf '  vdir.add_backend(%s);\n' "$node"; fi
    done
    printf '}\n\nsub vcl_recv {\n  return (pass);\n}\n\n'
    printf 'sub vcl_backend_fetch {\n  set bereq.backend = %s;\n}\n\n' "$pick"
    printf 'sub vcl_backend_response {\n  if (beresp.status >= 500 && bereq.retries < %s) {\n    return (retry);\n  }\n}\n\n' "$retries"
    printf 'sub vcl_backend_error {\n  if (bereq.retries < %s) {\n    return (retry);\n  }\n}\n' "$retries"
  } >"$DIR/zoo.vcl"
}

start_balancer() {
  write_vcl "$1"
  if [ -f "$DIR/varnish.pid" ] && kill -0 "$(cat "$DIR/varnish.pid")" 2>/dev/null; then
    # a running Varnish takes the new VCL without a restart, as operators change it
    name="zoo$(date +%s%N)"
    varnishadm -n "$DIR/varnish" vcl.load "$name" "$DIR/zoo.vcl" >/dev/null
    varnishadm -n "$DIR/varnish" vcl.use "$name" >/dev/null
    return 0
  fi
  varnishd -a "$ENTRY:8080" -f "$DIR/zoo.vcl" -n "$DIR/varnish" -P "$DIR/varnish.pid" \
    -s malloc,16m -p thread_pool_min=10 -p thread_pool_max=200 </dev/null >"$DIR/varnishd.log" 2>&1
}

case "${1:-}" in
  up)
    variant=${2:-sound}
    case " $CONFIGURATIONS " in *" $variant "*) ;;
      *) echo "cluster.sh: unknown configuration '$variant' ($CONFIGURATIONS)" >&2; exit 2 ;; esac
    if [ ! -d "$DIR" ]; then
      mkdir -p "$DIR"
      containers_up
    fi
    start_balancer "$variant"
    ;;
  down)
    containers_down
    [ -f "$DIR/varnish.pid" ] && kill -TERM "$(cat "$DIR/varnish.pid")" 2>/dev/null || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: cluster.sh up [$(echo $CONFIGURATIONS | tr ' ' '|')] | down" >&2; exit 2 ;;
esac
