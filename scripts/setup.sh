#!/usr/bin/env bash
# One idempotent set-up path for a fresh Debian machine (run as root, or with sudo on PATH).
#
# Installs what the harness runs for real: Debian packages (HAProxy, Redis, debootstrap, the
# third-party target's servers), the real Toxiproxy server built through the Go module proxy,
# the Allure command line from npm, and the project's Python environment in .venv. Every step
# first checks whether its work is already done, so a second run takes seconds.
#
# Docker is left alone where it works (`docker_plan`): an engine that answers is used as it
# is; a dockerd from any package (Docker CE, Moby, docker.io) is started, with addresses from
# the benchmarking range, if it is not running; only where there is none is Debian's docker.io
# installed. An engine that cannot be started is one sentence, not a failed set-up: the
# docker backend is then unavailable and `--backend auto` uses local. HARNESS_DOCKER=skip
# leaves Docker out altogether (a chroot sharing the host's network, as `make test-trixie`
# runs). Sourcing this file defines the functions without running them (the tests do).
set -euo pipefail

TOXIPROXY_VERSION=v2.12.0
ALLURE_VERSION=2.46.1
APT_PACKAGES=(haproxy redis-server debootstrap openssl procps iproute2 iptables lftp swaks chromium wrk curl
              # stock servers of the third-party target in tests/thirdparty and the zoo's members
              # in tests/zoo (not the reference node); the zoo's containers get theirs by debootstrap
              # (sudo: apache-tomcat's operator script runs each JVM as the tomcat user)
              nginx lighttpd lighttpd-mod-openssl proftpd-core postfix caddy
              apache2 tomcat10 sudo varnish
              # the zoo's hosts-ssh member: an sshd per namespace host
              openssh-server
              # the zoo's haproxy-nginx member: its operator talks to HAProxy's runtime API so
              socat)
# Services the packages start that are not ours: the harness starts its own instances per run.
FOREIGN_SERVICES=(haproxy redis-server nginx lighttpd proftpd postfix caddy
                  apache2 tomcat10 varnish varnishncsa ssh)
# The build tools set-up uses, from Debian where the machine has none: Go builds Toxiproxy,
# npm fetches Allure, and Allure's report generator runs on Java.
TOOL_PACKAGES=(go:golang-go npm:npm java:default-jre-headless)
DOCKER_PACKAGE=docker.io  # only where no Docker engine is installed at all
DOCKER_ORIGIN=/var/lib/harness/docker-origin  # what `harness doctor` reports
ROOT=$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)
VENV="$ROOT/.venv"

say() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# use: an engine answers; start: a dockerd is installed but not running; install: neither;
# skip: HARNESS_DOCKER=skip says to leave Docker out.
docker_plan() {
  if [ "${HARNESS_DOCKER:-}" = skip ]; then echo skip; return; fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo use; return; fi
  if command -v dockerd >/dev/null 2>&1; then echo start; return; fi
  echo install
}

dockerd_package() {  # " (dockerd from PACKAGE)", where a package owns the dockerd on PATH
  local path pkg
  path=$(command -v dockerd 2>/dev/null) || return 0
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | cut -d: -f1) || true
  echo " (dockerd ${path}${pkg:+ from $pkg})"
}

record_docker_origin() {  # the first run's finding stays: later runs find what it installed
  [ -f "$DOCKER_ORIGIN" ] && return
  as_root mkdir -p "${DOCKER_ORIGIN%/*}"
  echo "$1" | as_root tee "$DOCKER_ORIGIN" >/dev/null
}

missing_tools() {  # the Debian packages of the build tools this machine lacks
  local tool
  for tool in "${TOOL_PACKAGES[@]}"; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || echo "${tool#*:}"
  done
}

install_debian_packages() {
  local missing=() plan=$1
  [ "$plan" = install ] && APT_PACKAGES+=("$DOCKER_PACKAGE")
  # shellcheck disable=SC2207  # package names have no spaces
  APT_PACKAGES+=($(missing_tools))
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "Debian packages present"; return; fi
  say "installing Debian packages: ${missing[*]}"
  # No system mail server and no inetd entry: postfix is here for its smtp-sink, proftpd
  # for instances the tests start themselves.
  printf '%s\n' "postfix postfix/main_mailer_type select No configuration" \
                 "proftpd-core shared/proftpd/inetd_or_standalone select standalone" \
    | as_root debconf-set-selections
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for svc in "${FOREIGN_SERVICES[@]}"; do as_root service "$svc" stop >/dev/null 2>&1 || true; done
}

start_docker_engine() {
  case $1 in
    skip) say "Docker left out (HARNESS_DOCKER=skip); the docker backend is unavailable"; return ;;
    use) say "Docker engine answers; left as it is"
         record_docker_origin "already running when set-up first ran$(dockerd_package)"; return ;;
    start) record_docker_origin "already installed$(dockerd_package); started by set-up" ;;
    install) record_docker_origin "$DOCKER_PACKAGE installed by set-up" ;;
  esac
  if ! command -v dockerd >/dev/null 2>&1; then
    say "no Docker engine could be installed; the docker backend is unavailable (auto uses local)"
    return
  fi
  say "starting the Docker engine (bridge 198.19.255.1/24, pools in 198.18.0.0/16)"
  as_root sh -c 'nohup dockerd --bip 198.19.255.1/24 \
      --default-address-pool base=198.18.0.0/16,size=24 >/var/log/harness-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && { say "Docker engine up"; return; }; sleep 0.5; done
  say "the Docker engine did not start within 30 s (see /var/log/harness-dockerd.log); the docker backend is unavailable (auto uses local)"
}

install_toxiproxy() {
  if command -v toxiproxy-server >/dev/null 2>&1 \
     && toxiproxy-server --version 2>&1 | grep -q "${TOXIPROXY_VERSION#v}"; then
    say "toxiproxy-server ${TOXIPROXY_VERSION} present"; return
  fi
  say "building toxiproxy-server ${TOXIPROXY_VERSION} through the Go module proxy"
  local gobin; gobin=$(mktemp -d)
  # Stamp the version as the project's own release build does, so the check above can see it.
  GOBIN="$gobin" go install -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
  as_root install -m 0755 "$gobin/server" /usr/local/bin/toxiproxy-server
  rm -rf "$gobin"
}

install_allure() {
  if command -v allure >/dev/null 2>&1 && allure --version 2>/dev/null | grep -qx "$ALLURE_VERSION"; then
    say "allure ${ALLURE_VERSION} present"; return
  fi
  say "installing allure-commandline ${ALLURE_VERSION} from npm"
  as_root npm install -g --silent --no-fund --no-audit "allure-commandline@${ALLURE_VERSION}" >/dev/null
}

install_python_env() {
  local stamp="$VENV/.installed-from" want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then say "Python environment current"; return; fi
  say "installing the Python environment in .venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # the distribution was called `harness` before it was `clusterproof`: one install, not two
  "$VENV/bin/pip" uninstall -q -y harness >/dev/null 2>&1 || true
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
  echo "$want" >"$stamp"
}

main() {
  local plan
  plan=$(docker_plan)
  install_debian_packages "$plan"
  start_docker_engine "$plan"
  install_toxiproxy
  install_allure
  install_python_env
  say "ready"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
