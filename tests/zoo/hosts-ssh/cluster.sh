#!/bin/bash
# Zoo member hosts-ssh: a cluster on four hosts, administered over SSH, as production runs
# Integration Servers. Each host is a network namespace of its own on a bridge of ours:
#
#   bridge zoo-hosts   198.18.14.1    this machine (where the harness runs)
#   host zoo-lb        198.18.14.10   HAProxy (entry: http 8080, https 8443), Redis (store
#                                     6379, the pools' back end 6380), an OpenSSH server
#                                     (port 22: a bastion, for topologies with proxy_jump)
#   host zoo-nodeI     198.18.14.1I   an OpenSSH server (port 22) and reference node I
#                                     (http 5555, https 5543, ftp 2121, smtp 2525)
#   host zoo-loadI     198.18.14.2I   a load machine: an OpenSSH server, where the harness starts
#                                     load workers (`--load-workers 2`); load2 runs in a time
#                                     namespace whose monotonic clock is an hour ahead
#
# The harness reaches the nodes only at these addresses and controls them only through SSH:
# a client key made per run (id_ed25519), host keys made per run and written to known_hosts
# (nothing accepted blindly), no password logins. Over SSH it signals the node's pidfile,
# runs start-node to restart it, and applies the kernel faults in the node host's namespace.
#
#   cluster.sh up [sound|no_redispatch|passes_503] | down
#
# `no_redispatch`: the balancer never retries a failed request on another node;
# `passes_503`: it retries failed connections only, and checks nodes by TCP connect.
# Everything lives in $ZOO_HOSTS_DIR (default /tmp/zoo-hosts-ssh). Daemons inherit this
# script's output: run it with its output to a file, never a pipe you wait on.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PYTHON=$ROOT/.venv/bin/python
DIR=${ZOO_HOSTS_DIR:-/tmp/zoo-hosts-ssh}
PREFIX=198.18.14
BRIDGE=zoo-hosts
TAG=zoo-hosts-ssh          # the comment on the one rule this script adds to this machine
NODES="node1 node2 node3"
LOADERS="load1 load2"
AHEAD_S=3600               # load2's monotonic clock, ahead of this machine's
BACKEND_MAX_CLIENTS=64     # the pools' back end: harness.cluster.reference's cap

host_ip() { case $1 in lb) echo "$PREFIX.10" ;; load*) echo "$PREFIX.2${1#load}" ;; *) echo "$PREFIX.1${1#node}" ;; esac; }
in_host() { local h=$1; shift; ip netns exec "zoo-$h" "$@"; }

wait_port() {  # host port: until something listens there (10 s)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster.sh: nothing listens on $1:$2" >&2; return 1
}

make_host() {  # name: a namespace with one leg on the bridge
  local h=$1 ip; ip=$(host_ip "$1")
  ip netns add "zoo-$h"
  ip link add "zh-$h" type veth peer name eth0 netns "zoo-$h"
  ip link set "zh-$h" master "$BRIDGE" up
  ip -n "zoo-$h" addr add "$ip/24" dev eth0
  ip -n "zoo-$h" link set eth0 up
  ip -n "zoo-$h" link set lo up
}

start_sshd() {  # host: its own sshd, its host key, its line in known_hosts
  local n=$1 ip; ip=$(host_ip "$1")
  mkdir -p "$DIR/$n" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C "$n-host" -f "$DIR/$n/host_key"
  echo "$ip $(cut -d' ' -f1,2 "$DIR/$n/host_key.pub")" >>"$DIR/known_hosts"
  cat >"$DIR/$n/sshd_config" <<EOF
ListenAddress $ip:22
HostKey $DIR/$n/host_key
PidFile $DIR/$n/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 50:30:100
EOF
  local clock=()  # load2's sshd, and all it starts, in a time namespace an hour ahead
  [ "$n" = load2 ] && clock=(unshare --time --fork --monotonic "$AHEAD_S")
  in_host "$n" "${clock[@]}" /usr/sbin/sshd -f "$DIR/$n/sshd_config" -E "$DIR/$n/sshd.log"
}

write_harness() {  # the harness as the load machines have it installed (this checkout's)
  printf '#!/bin/sh\nexec %s "$@"\n' "$ROOT/.venv/bin/harness" >"$DIR/harness"
  chmod 0755 "$DIR/harness"
}

write_start_node() {  # what the topology's control.ssh.start runs on a node's host
  cat >"$DIR/start-node" <<EOF
#!/bin/sh
# start-node NODE: the reference node NODE, in the background, its pid in $DIR/NODE.pid
cd "$ROOT" && setsid "$PYTHON" -m harness.sut --config "$DIR/\$1.json" >>"$DIR/\$1.log" 2>&1 </dev/null &
echo \$! >"$DIR/\$1.pid"
EOF
  chmod 0755 "$DIR/start-node"
}

over_ssh() {  # node command...: as the harness will, with the run's key and known_hosts
  local n=$1; shift
  ssh -F /dev/null -i "$DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$DIR/known_hosts" -o ConnectTimeout=5 \
    "root@$(host_ip "$n")" -- "$@" </dev/null
}

up() {
  local configuration=${1:-sound}
  case $configuration in sound|no_redispatch|passes_503) ;;
    *) echo "cluster.sh: unknown configuration '$configuration' (sound, no_redispatch, passes_503)" >&2; exit 2 ;; esac
  down
  mkdir -p "$DIR" && chmod 0700 "$DIR"
  "$PYTHON" "$HERE/configure.py" "$DIR" "$configuration"
  ssh-keygen -q -t ed25519 -N '' -C "zoo-hosts-ssh-client" -f "$DIR/id_ed25519"
  cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
  : >"$DIR/known_hosts"
  ip link add "$BRIDGE" type bridge
  ip addr add "$PREFIX.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # bridged packets pass this machine's FORWARD chain (Docker's policy there is DROP)
  iptables -w 5 -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$TAG" -j ACCEPT
  for h in lb $NODES $LOADERS; do make_host "$h"; done
  local lb; lb=$(host_ip lb)
  in_host lb redis-server --bind "$lb" --port 6379 --save '' --appendonly no --protected-mode no \
    --daemonize yes --pidfile "$DIR/redis-store.pid" --logfile "$DIR/redis-store.log"
  in_host lb redis-server --bind "$lb" --port 6380 --save '' --appendonly no --protected-mode no \
    --maxclients "$BACKEND_MAX_CLIENTS" --daemonize yes --pidfile "$DIR/redis-backend.pid" \
    --logfile "$DIR/redis-backend.log"
  wait_port "$lb" 6379 && wait_port "$lb" 6380
  write_start_node
  write_harness
  for h in lb $NODES $LOADERS; do start_sshd "$h"; done
  for n in $NODES; do wait_port "$(host_ip "$n")" 22; over_ssh "$n" "$DIR/start-node" "$n"; done
  for n in $NODES; do wait_port "$(host_ip "$n")" 5555; done
  in_host lb haproxy -D -f "$DIR/haproxy.cfg" -p "$DIR/haproxy.pid"
  wait_port "$lb" 8080
  echo "$configuration" >"$DIR/configuration"
}

down() {
  for h in lb $NODES $LOADERS; do
    if ip netns list | grep -qw "zoo-$h"; then
      ip netns pids "zoo-$h" | xargs -r kill -KILL 2>/dev/null || true
      ip netns del "zoo-$h"
    fi
    # the namespace goes once its last process has; its leg on the bridge goes now
    ip link del "zh-$h" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -w 5 -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null; do :; done
  rm -rf "$DIR"
}

case ${1:-} in
  up) up "${2:-sound}" ;;
  down) down ;;
  *) echo "usage: cluster.sh up [sound|no_redispatch|passes_503] | down" >&2; exit 2 ;;
esac
