#!/bin/sh
# Zoo member apache-tomcat: Apache httpd's mod_proxy_balancer over three instances of
# Debian's Tomcat 10, the way Java shops run it (AJP between them), all stock packages:
#
#   entry 127.14.0.1    Apache: HTTP 8080, HTTPS 8443 (L7; TLS ends here; to the nodes by
#                       AJP, each request preceded by a CPING the node must answer in 300 ms,
#                       else it goes to another node; CPING health checks every second;
#                       sticky by JSESSIONID for clients that keep one)
#   Toxiproxy 127.14.0.2:8474, proxies node<i>-http on 127.14.2.i:8009 and node<i>-https on
#                       127.14.3.i:8009: the AJP links the HTTP and the HTTPS balancer use,
#                       where network faults go
#   node i 127.14.1.i   Tomcat: HTTP 8080, HTTPS 8443, AJP 8009; /whoami.html says
#                       "Served by node<i>" (the topology's body regex)
#
#   cluster.sh up [CONFIGURATION]     start, or reconfigure the balancer (default: sound)
#   cluster.sh down                   stop everything, remove the run's directory
#
# The nodes run as the tomcat user and are controlled as an operator does it: through sudo,
# by a script installed at $ZOO_TOMCAT_DIR/bin/tomcat-node (see the topology); catalina.sh
# daemonizes each JVM. Configurations (what breaks: member.yaml): sound, no_ping, skewed.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

DIR=${ZOO_TOMCAT_DIR:-/tmp/harness-zoo-apache-tomcat}
ENTRY=127.14.0.1
TOXIPROXY=127.14.0.2:8474
NODES="node1 node2 node3"
CONFIGURATIONS="sound no_ping skewed"
MODULES=/usr/lib/apache2/modules

node_ip() { echo "127.14.1.${1#node}"; }
link_ip() { [ "$2" = http ] && echo "127.14.2.${1#node}" || echo "127.14.3.${1#node}"; }

make_certs() {  # the cluster's own CA, and a certificate per server
  servers="lb=$ENTRY"
  for node in $NODES; do servers="$servers $node=$(node_ip "$node")"; done
  # shellcheck disable=SC2086 # a list of name=ip words
  "$HERE/../make-certs.sh" "$DIR" zoo-apache-tomcat-ca $servers
}

write_node() {  # a Tomcat base of the node's own, owned by the user it runs as
  node=$1 ip=$(node_ip "$1") base="$DIR/$1"
  mkdir -p "$base/conf" "$base/logs" "$base/temp" "$base/work" "$base/webapps/ROOT"
  cp /etc/tomcat10/web.xml /etc/tomcat10/catalina.properties "$base/conf/"
  cp "$DIR/$node.crt" "$DIR/$node.key" "$base/conf/"
  cat >"$base/conf/server.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Server address="$ip" port="8005" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector address="$ip" port="8080" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Connector address="$ip" port="8443" protocol="org.apache.coyote.http11.Http11NioProtocol"
               SSLEnabled="true" scheme="https" secure="true">
      <SSLHostConfig>
        <Certificate certificateFile="conf/$node.crt" certificateKeyFile="conf/$node.key" type="EC"/>
      </SSLHostConfig>
    </Connector>
    <Connector address="$ip" port="8009" protocol="AJP/1.3" secretRequired="false"/>
    <Engine name="Catalina" defaultHost="localhost" jvmRoute="$node">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
XML
  printf '<html><body><p>Served by %s</p></body></html>\n' "$node" >"$base/webapps/ROOT/whoami.html"
  chown -R tomcat:tomcat "$base"
}

write_apache() {
  variant=$1
  # sound: CPING before each request (a frozen JVM does not answer it: the request goes to
  # another node); a node in error is tried again after 1 s. mod_proxy cannot send a
  # request again once it went out, so one whose answer is stuck (a link losing most
  # packets: TCP's retransmits) is given up after 1 s, a 504 within the error budget, and
  # its node put in error (failontimeout); with 5 s, 2 of 6 runs had one wait 2.4-3.2 s
  member="ping=300ms timeout=1 retry=1 hcmethod=CPING hcinterval=1 hcpasses=1 hcfails=1"
  [ "$variant" = no_ping ] && member="timeout=30 retry=1"
  {
    cat <<CONF
DefaultRuntimeDir $DIR/apache
PidFile $DIR/apache/apache.pid
ErrorLog $DIR/apache/error.log
LogLevel warn
Mutex file:$DIR/apache default
ServerName zoo-apache-tomcat
User www-data
Group www-data
StartServers 1
ThreadsPerChild 25
MaxRequestWorkers 50
CONF
    for m in mpm_event authz_core proxy proxy_ajp proxy_balancer lbmethod_byrequests \
        slotmem_shm proxy_hcheck ssl socache_shmcb; do
      echo "LoadModule ${m}_module $MODULES/mod_$m.so"
    done
    printf 'Listen %s:8080\nListen %s:8443\nSSLSessionCache shmcb:%s/apache/ssl_cache(512000)\n' \
      "$ENTRY" "$ENTRY" "$DIR"
    for proto in http https; do
      echo "<Proxy balancer://web_$proto>"
      for node in $NODES; do
        factor=1; [ "$variant" = skewed ] && [ "$node" = node3 ] && factor=6
        echo "  BalancerMember ajp://$(link_ip "$node" $proto):8009 route=$node loadfactor=$factor $member"
      done
      ping=""; [ "$variant" != no_ping ] && ping=" failontimeout=On"
      echo "  ProxySet lbmethod=byrequests stickysession=JSESSIONID|jsessionid maxattempts=2$ping"
      echo "</Proxy>"
    done
    cat <<CONF
<VirtualHost $ENTRY:8080>
  ServerName localhost
  ProxyPass / balancer://web_http/
</VirtualHost>
<VirtualHost $ENTRY:8443>
  ServerName localhost
  SSLEngine on
  SSLCertificateFile $DIR/lb.crt
  SSLCertificateKeyFile $DIR/lb.key
  ProxyPass / balancer://web_https/
</VirtualHost>
CONF
  } >"$DIR/apache/apache.conf"
}

start_toxiproxy() {
  toxiproxy-server -host "${TOXIPROXY%:*}" -port "${TOXIPROXY#*:}" </dev/null >"$DIR/toxiproxy.log" 2>&1 &
  echo $! >"$DIR/toxiproxy.pid"
  for _ in $(seq 1 100); do curl -sf "http://$TOXIPROXY/version" >/dev/null && break; sleep 0.05; done
  for node in $NODES; do
    for proto in http https; do
      curl -sf -X POST "http://$TOXIPROXY/proxies" -d "{\"name\": \"$node-$proto\", \
\"listen\": \"$(link_ip "$node" $proto):8009\", \"upstream\": \"$(node_ip "$node"):8009\"}" >/dev/null
    done
  done
}

start_balancer() {
  mkdir -p "$DIR/apache"
  write_apache "$1"
  old=$(cat "$DIR/apache/apache.pid" 2>/dev/null || true)
  if [ -n "$old" ]; then
    kill -TERM "$old" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  fi
  apache2 -f "$DIR/apache/apache.conf" -k start </dev/null >>"$DIR/apache/error.log" 2>&1 ||
    { echo "cluster.sh: apache2 did not start: $(tail -1 "$DIR/apache/error.log")" >&2; exit 1; }
  for url in "http://$ENTRY:8080/whoami.html" "https://$ENTRY:8443/whoami.html"; do
    for _ in $(seq 1 100); do curl -sfk -o /dev/null --max-time 1 "$url" && continue 2; sleep 0.05; done
    echo "cluster.sh: the balancer does not answer at $url (see $DIR/apache/error.log)" >&2; exit 1
  done
}

case "${1:-}" in
  up)
    variant=${2:-sound}
    case " $CONFIGURATIONS " in *" $variant "*) ;;
      *) echo "cluster.sh: unknown configuration '$variant' ($CONFIGURATIONS)" >&2; exit 2 ;; esac
    if [ ! -f "$DIR/ca.pem" ]; then
      mkdir -p "$DIR/bin"
      make_certs
      install -m 755 "$HERE/tomcat-node" "$DIR/bin/tomcat-node"  # where the operator keeps it
      for node in $NODES; do write_node "$node"; done
      for node in $NODES; do sudo -n -u tomcat "$DIR/bin/tomcat-node" start "$node" & done
      wait
      start_toxiproxy
    fi
    start_balancer "$variant"
    ;;
  down)
    [ -d "$DIR" ] || exit 0
    kill -TERM "$(cat "$DIR/apache/apache.pid" 2>/dev/null)" 2>/dev/null || true
    kill -KILL "$(cat "$DIR/toxiproxy.pid" 2>/dev/null)" 2>/dev/null || true
    for node in $NODES; do kill -KILL "$(cat "$DIR/$node/tomcat.pid" 2>/dev/null)" 2>/dev/null || true; done
    rm -rf "$DIR"
    ;;
  *) echo "usage: cluster.sh up [$(echo $CONFIGURATIONS | tr ' ' '|')] | down" >&2; exit 2 ;;
esac
