# clusterproof in a container: the harness with its scenarios and locustfiles, the Toxiproxy
# server and iptables, on Debian's Python. `clusterproof image` builds it from this checkout
# (the build context holds the wheel and a wheelhouse of its dependencies made on the host, at
# the host's versions, and the Toxiproxy server set-up built: no package index is needed
# inside). Run it on the host's network with your topology mounted:
#
#   docker run --rm --network host -v "$PWD:/work" clusterproof:VERSION run --topology topology.yaml
#
# Kernel network faults need --cap-add NET_ADMIN; the report lands in /work/reports.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-venv iptables iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY wheels /wheels
RUN python3 -m venv /opt/clusterproof \
 && /opt/clusterproof/bin/pip install -q --no-index --find-links /wheels clusterproof \
 && rm -rf /wheels
COPY toxiproxy-server /usr/local/bin/toxiproxy-server
ENV PATH=/opt/clusterproof/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONUNBUFFERED=1
WORKDIR /work
ENTRYPOINT ["clusterproof"]
CMD ["--help"]
