# The node containers of the zoo's container members (sourced by their cluster.sh), which set
# first: NODES, IMAGE, PACKAGES and IMAGE_SETUP (what build-image.sh installs and runs),
# NETWORK and SUBNET, PREFIX (containers are PREFIX-<node>), HEALTH (a path every node answers
# over HTTP on its published port 8080), and define node_ip NODE and start_node NODE.

containers_up() {  # the image (built once), the network, the nodes, each answering (20 s each at most)
  "$HERE/../build-image.sh" "$IMAGE" "$PACKAGES" "$IMAGE_SETUP"
  docker network create --subnet "$SUBNET" "$NETWORK" >/dev/null
  for node in $NODES; do start_node "$node"; done
  for node in $NODES; do
    for _ in $(seq 1 200); do
      curl -sf -o /dev/null --max-time 1 "http://$(node_ip "$node"):8080$HEALTH" && break
      sleep 0.1
    done
  done
}

containers_down() {
  for node in $NODES; do docker rm -f "$PREFIX-$node" >/dev/null 2>&1 || true; done
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
}
