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
#   cluster.sh up [CONFIGURATION]                       start, or reconfigure (default: sound)
#   cluster.sh down                                     stop everything, remove the run dir
#   cluster.sh kill|pause|resume|restart NODE           node control, for the topology
#
# Broken configurations: `skewed` weights the first node 4:1; `no_retry` never retries on the
# next node; `ftp_fronted` puts FTP behind the cluster address (HAProxy, failing over);
# `manifest_differs` deploys an older package on node3; `mail_twice` serves node2's SMTP with
# postfix, whose archive copy (always_bcc) lands in the same mailbox: every message it accepts
# is delivered twice. Evidence beyond client traffic: each node serves its manifest at
# /manifest.json; every message a node accepts lands under $DIR/mail-NODE/ (smtp-sink's dump,
# or postfix's Maildir).
# Everything lives in $THIRDPARTY_DIR (default /tmp/harness-thirdparty) and listens on
# 127.11.0.0/16 only. A node's daemons inherit this script's output on restart, as an
# operator's script would let them: the harness must not hang on that.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

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

make_certs() {  # the cluster's own CA, and a certificate per server (tests/zoo/make-certs.sh)
  servers="lb=$ENTRY"
  for node in $NODES; do servers="$servers $node=$(node_ip "$node")"; done
  # shellcheck disable=SC2086 # a list of name=ip words
  "$HERE/../zoo/make-certs.sh" "$DIR" thirdparty-ca $servers
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
# the balancer keeps idle connections to a node 60 s (its upstream keepalive_timeout): the node
# keeps them longer, so the balancer is the one to close them. The other way round (lighttpd's
# 5 s), a request sent on a connection the node is closing fails, and with max_fails=1 that
# one error takes the node out of rotation for 3 s (most likely what sent all HTTP to node1 for
# 3.5 s, no client seeing an error, in a quiet window of a soak in the suite)
server.max-keep-alive-idle = 120
mimetype.assign = (".txt" => "text/plain", ".json" => "application/json")
\$SERVER["socket"] == "$ip:8443" {
  ssl.engine = "enable"
  ssl.pemfile = "$DIR/$node.pem"
}
EOF
  # Debian 12 compiles transfers and listings in; Debian 13 ships them as modules to load.
  cat >"$DIR/$node-proftpd.conf" <<EOF
<IfModule mod_dso.c>
ModulePath /usr/lib/proftpd
<IfModule !mod_xfer.c>
LoadModule mod_xfer.c
</IfModule>
<IfModule !mod_ls.c>
LoadModule mod_ls.c
</IfModule>
</IfModule>
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
  : "${THIRDPARTY_FTP_PASSWORD:?set THIRDPARTY_FTP_PASSWORD to the password of the FTP user}"
  hash=$(printf '%s' "$THIRDPARTY_FTP_PASSWORD" | openssl passwd -6 -stdin)
  # one virtual user for every node, at home (and chrooted) in a directory the daemons can
  # write after dropping to nobody
  echo "harness:$hash:65534:65534::$DIR/ftp:/bin/false" >"$DIR/ftpd.passwd"
  echo "nogroup:x:65534:" >"$DIR/ftpd.group"
  mkdir -p "$DIR/ftp" && chown nobody:nogroup "$DIR/ftp"
  chmod 0600 "$DIR/ftpd.passwd" "$DIR/ftpd.group"
}

start_node() {
  lighttpd -f "$DIR/$1-lighttpd.conf"
  proftpd -c "$DIR/$1-proftpd.conf" -q
  start_smtp "$1"
}

start_smtp() {
  node=$1 ip=$(node_ip "$1")
  if [ "$(cat "$DIR/variant" 2>/dev/null)" = mail_twice ] && [ "$node" = node2 ]; then
    write_postfix "$node"
    postfix -c "$DIR/postfix-$node" start >>"$DIR/$node-postfix.log" 2>&1
    cat "$DIR/postfix-$node/queue/pid/master.pid" >"$DIR/$node-smtp.pid"
  else
    smtp-sink -u nobody -h "$node" -d "$DIR/mail-$node/%Y%m%d%H%M%S." "$ip:2525" 64 &
    echo $! >"$DIR/$node-smtp.pid"
  fi
}

stop_smtp() {
  pid=$(cat "$DIR/$1-smtp.pid" 2>/dev/null) || return 0
  kill -KILL "$pid" 2>/dev/null || true
  pkill -KILL -g "$pid" 2>/dev/null || true
  rm -f "$DIR/$1-smtp.pid"
}

write_postfix() {  # a postfix of the node's own, listening on the node's SMTP address only
  node=$1 conf="$DIR/postfix-$1"
  mkdir -p "$conf/queue" "$conf/data" && chown postfix "$conf/data"
  cat >"$conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $conf/queue
data_directory = $conf/data
myhostname = $node
smtpd_banner = \$myhostname ESMTP
inet_interfaces = all
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
maillog_file = $DIR/$node-postfix.log
maillog_file_prefixes = $DIR
virtual_mailbox_domains = harness.invalid
virtual_mailbox_base = $DIR/mail-$node
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
always_bcc = archive@harness.invalid
EOF
  # inet_interfaces is all only because these are not interface addresses: the one
  # listener below binds the node's own address, nothing else
  cat >"$conf/master.cf" <<EOF
$(node_ip "$node"):2525 inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
proxymap unix - - n - - proxymap
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
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

write_ftp_entry() {  # the broken `ftp_fronted`: FTP behind the cluster address, balanced by
  # source address (the usual way, for passive data connections), failing over
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
    echo "  balance source"
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

gone() {  # wait (at most 5 s) until none of the given processes runs
  for _ in $(seq 1 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.05
  done
}

start_balancer() {
  variant=$1 old="$(pids entry) $(cat "$DIR/nginx.pid" 2>/dev/null || true)"
  for pid in $(pids entry); do kill -TERM "$pid" 2>/dev/null || true; done
  [ -f "$DIR/nginx.pid" ] && kill -QUIT "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
  # shellcheck disable=SC2086 # a list of pids
  gone $old  # the new balancer binds the same addresses
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
    case $variant in sound|skewed|no_retry|ftp_fronted|manifest_differs|mail_twice) ;;
      *) echo "cluster.sh: unknown configuration '$variant' (sound, skewed, no_retry, ftp_fronted, manifest_differs, mail_twice)" >&2; exit 2;; esac
    previous=$(cat "$DIR/variant" 2>/dev/null || echo sound)
    if [ ! -f "$DIR/ca.pem" ]; then
      mkdir -p "$DIR" && chmod 0755 "$DIR"
      make_certs
      write_users
      for node in $NODES; do write_node "$node"; start_node "$node"; done
    fi
    echo "$variant" >"$DIR/variant"
    write_manifests "$variant"
    start_balancer "$variant"
    if [ "$previous" = mail_twice ] || [ "$variant" = mail_twice ]; then
      stop_smtp node2 && start_smtp node2
    fi
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
  *) echo "usage: cluster.sh up [sound|skewed|no_retry|ftp_fronted|manifest_differs|mail_twice] | down | kill|pause|resume|restart NODE" >&2; exit 2 ;;
esac
