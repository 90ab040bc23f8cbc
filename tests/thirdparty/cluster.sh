#!/bin/sh
# A 3-node cluster made only of stock Debian servers, to prove the harness on a cluster it
# did not build (examples/topology-thirdparty.yaml describes it):
#
#   entry 127.11.0.1   nginx: HTTP 8080, HTTPS 8443 (L7; re-encrypts to the nodes, verifying
#                      them against the run's CA; retries the next node on error or timeout)
#   node i 127.11.1.i  lighttpd: HTTP 8080, HTTPS 8443 (TLS ends at the node), the body of
#                      /whoami.txt names the node; proftpd 2121 (virtual user `harness`, its
#                      password from $THIRDPARTY_FTP_PASSWORD); postfix's smtp-sink 2525
#
#   cluster.sh up [sound|skewed|no_retry|ftp_fronted|manifest_differs]   start, or reconfigure
#   cluster.sh down                                     stop everything, remove the run dir
#   cluster.sh kill|pause|resume|restart NODE           node control, for the topology
#
# Broken configurations: `skewed` weights the first node 4:1; `no_retry` never retries on the
# next node; `ftp_fronted` puts FTP behind the cluster address (HAProxy, failing over);
# `manifest_differs` deploys an older package on node3. Evidence beyond client traffic: each
# node serves its manifest at /manifest.json; smtp-sink dumps every message it accepts to
# $DIR/mail-NODE/.
# Everything lives in $THIRDPARTY_DIR (default /tmp/harness-thirdparty) and listens on
# 127.11.0.0/16 only. A node's daemons inherit this script's output on restart, as an
# operator's script would let them: the harness must not hang on that.
set -eu

DIR=${THIRDPARTY_DIR:-/tmp/harness-thirdparty}
ENTRY=127.11.0.1
NODES="node1 node2 node3"

node_ip() { echo "127.11.1.${1#node}"; }
pids() { cat "$DIR/$1"-*.pid 2>/dev/null || true; }
# A daemon's sessions are its children (proftpd forks one per login): signal the daemon's
# process group (lighttpd and proftpd lead their own), or the process alone (smtp-sink).
signal_node() {
  for pid in $(pids "$2"); do
    kill "-$1" "$pid" 2>/dev/null || true
    pkill "-$1" -g "$pid" 2>/dev/null || true
  done
}

make_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=thirdparty-ca -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
  for name in lb $NODES; do
    ip=$ENTRY; [ "$name" = lb ] || ip=$(node_ip "$name")
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
      -keyout "$DIR/$name.key" -out "$DIR/$name.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:localhost\n' "$ip" >"$DIR/$name.ext"
    openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
      -CAcreateserial -days 2 -extfile "$DIR/$name.ext" -out "$DIR/$name.crt" 2>/dev/null
    cat "$DIR/$name.crt" "$DIR/$name.key" >"$DIR/$name.pem"
  done
}

write_node() {  # the node's lighttpd, proftpd configuration and documents
  node=$1 ip=$(node_ip "$1")
  mkdir -p "$DIR/www-$node" "$DIR/mail-$node"
  chown nobody "$DIR/mail-$node"
  echo "served by $node" >"$DIR/www-$node/whoami.txt"
  cat >"$DIR/$node-lighttpd.conf" <<EOF
server.modules += ("mod_openssl")
server.document-root = "$DIR/www-$node"
server.bind = "$ip"
server.port = 8080
server.pid-file = "$DIR/$node-lighttpd.pid"
server.errorlog = "$DIR/$node-lighttpd.log"
mimetype.assign = (".txt" => "text/plain", ".json" => "application/json")
\$SERVER["socket"] == "$ip:8443" {
  ssl.engine = "enable"
  ssl.pemfile = "$DIR/$node.pem"
}
EOF
  cat >"$DIR/$node-proftpd.conf" <<EOF
ServerType standalone
ServerName "$node"
ServerIdent on "$node FTP ready"
DefaultAddress $ip
SocketBindTight on
Port 2121
PassivePorts 30000 30200
UseIPv6 off
PidFile $DIR/$node-proftpd.pid
ScoreboardFile $DIR/$node-proftpd.scoreboard
SystemLog $DIR/$node-proftpd.log
WtmpLog off
UseReverseDNS off
User nobody
Group nogroup
AuthOrder mod_auth_file.c
AuthUserFile $DIR/ftpd.passwd
AuthGroupFile $DIR/ftpd.group
RequireValidShell off
DefaultRoot ~
AllowOverwrite on
EOF
}

write_users() {
  : "${THIRDPARTY_FTP_PASSWORD:?set THIRDPARTY_FTP_PASSWORD, the FTP user's password}"
  hash=$(printf '%s' "$THIRDPARTY_FTP_PASSWORD" | openssl passwd -6 -stdin)
  # one virtual user for every node, at home (and chrooted) in a directory the daemons can
  # write after dropping to nobody
  echo "harness:$hash:65534:65534::$DIR/ftp:/bin/false" >"$DIR/ftpd.passwd"
  echo "nogroup:x:65534:" >"$DIR/ftpd.group"
  mkdir -p "$DIR/ftp" && chown nobody:nogroup "$DIR/ftp"
  chmod 0600 "$DIR/ftpd.passwd" "$DIR/ftpd.group"
}

start_node() {
  node=$1 ip=$(node_ip "$1")
  lighttpd -f "$DIR/$node-lighttpd.conf"
  proftpd -c "$DIR/$node-proftpd.conf" -q
  smtp-sink -u nobody -h "$node" -d "$DIR/mail-$node/%Y%m%d%H%M%S." "$ip:2525" 64 &
  echo $! >"$DIR/$node-smtp.pid"
}

stop_node() {
  signal_node KILL "$1"
  rm -f "$DIR/$1"-*.pid
}

write_nginx() {
  variant=$1 retry="error timeout http_502 http_503 http_504 non_idempotent"
  [ "$variant" = no_retry ] && retry=off
  {
    echo "user root; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.log;"
    echo "events { worker_connections 1024; }"
    echo "http {"
    echo "  access_log off;"
    echo "  proxy_connect_timeout 300ms; proxy_read_timeout 1s; proxy_send_timeout 1s;"
    echo "  proxy_next_upstream $retry; proxy_next_upstream_tries 3;"
    echo "  proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host;"
    for proto in http https; do
      port=8080; [ $proto = https ] && port=8443
      echo "  upstream nodes_$proto {"
      for node in $NODES; do
        weight=1; [ "$variant" = skewed ] && [ $node = node1 ] && weight=4
        echo "    server $(node_ip $node):$port weight=$weight max_fails=1 fail_timeout=3s;"
      done
      echo "    keepalive 16;"
      echo "  }"
    done
    echo "  server { listen $ENTRY:8080; location / { proxy_pass http://nodes_http; } }"
    echo "  server { listen $ENTRY:8443 ssl; ssl_certificate $DIR/lb.crt; ssl_certificate_key $DIR/lb.key;"
    echo "    location / { proxy_pass https://nodes_https; proxy_ssl_verify on;"
    echo "      proxy_ssl_trusted_certificate $DIR/ca.pem; proxy_ssl_name localhost;"
    echo "      proxy_ssl_session_reuse on; } }"
    echo "}"
  } >"$DIR/nginx.conf"
}

write_ftp_entry() {  # the broken `ftp_fronted`: FTP behind the cluster address, failing over
  {
    echo "global"
    echo "  pidfile $DIR/entry-haproxy.pid"
    echo "defaults"
    echo "  mode tcp"
    echo "  timeout connect 300ms"
    echo "  timeout client 30s"
    echo "  timeout server 30s"
    echo "listen ftp_entry"
    echo "  bind $ENTRY:2121"
    echo "  option redispatch"
    echo "  retries 3"
    for node in $NODES; do
      echo "  server $node $(node_ip $node):2121 check inter 200 fall 1 rise 2"
    done
  } >"$DIR/entry-haproxy.cfg"
}

write_manifests() {  # what each node has deployed; `manifest_differs` makes node3 lag behind
  for node in $NODES; do
    orders=2.1.0; [ "$1" = manifest_differs ] && [ $node = node3 ] && orders=2.0.3
    printf '{"node": "%s", "server": "lighttpd/1.4.69", "packages": {"orders": "%s", "billing": "1.4.2"}}\n' \
      "$node" "$orders" >"$DIR/www-$node/manifest.json"
  done
}

start_balancer() {
  variant=$1
  for pid in $(pids entry); do kill -TERM "$pid" 2>/dev/null || true; done
  [ -f "$DIR/nginx.pid" ] && kill -QUIT "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
  sleep 0.3
  write_nginx "$variant"
  nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/nginx.log"
  if [ "$variant" = ftp_fronted ]; then
    write_ftp_entry
    haproxy -D -f "$DIR/entry-haproxy.cfg"
  fi
}

case "${1:-}" in
  up)
    variant=${2:-sound}
    case $variant in sound|skewed|no_retry|ftp_fronted|manifest_differs) ;;
      *) echo "cluster.sh: unknown configuration '$variant' (sound, skewed, no_retry, ftp_fronted, manifest_differs)" >&2; exit 2;; esac
    if [ ! -f "$DIR/ca.pem" ]; then
      mkdir -p "$DIR" && chmod 0755 "$DIR"
      make_certs
      write_users
      for node in $NODES; do write_node "$node"; start_node "$node"; done
    fi
    write_manifests "$variant"
    start_balancer "$variant"
    echo "$variant" >"$DIR/variant"
    ;;
  down)
    [ -d "$DIR" ] || exit 0
    [ -f "$DIR/nginx.pid" ] && kill -TERM "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
    for node in $NODES entry; do stop_node "$node"; done
    rm -rf "$DIR"
    ;;
  kill) stop_node "$2" ;;
  pause) signal_node STOP "$2" ;;
  resume) signal_node CONT "$2" ;;
  restart) stop_node "$2"; start_node "$2" ;;
  *) echo "usage: cluster.sh up [sound|skewed|no_retry|ftp_fronted|manifest_differs] | down | kill|pause|resume|restart NODE" >&2; exit 2 ;;
esac
