#!/usr/bin/env bash
# `make test-trixie`: the harness's tests (minus the docker backend) and the local-backend
# conformance suite under Debian 13 and its Python 3.13, in a chroot of Debian 13.
#
# The chroot is made once with debootstrap (minbase, about 35 s) under $TRIXIE_DIR and kept;
# each run copies the committed tree into it (git archive: what CI would check out) and runs
# the README's own commands there: `make test` (set-up included, with HARNESS_DOCKER=skip:
# the chroot shares this host's network and Docker engine, which are not its to manage) and
# `pytest scenarios/ --backend local`. pip reaches PyPI in the chroot through this host's CA
# bundle and pip.conf. /proc, /sys and /dev are bind-mounted for the run and always unmounted.
set -euo pipefail  # pipefail: a failed run is not hidden by tee

ROOT=$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)
DIR=${TRIXIE_DIR:-/var/lib/harness/trixie}
MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}
WORK=/work/harness
MOUNTS=(proc sys dev dev/pts)

say() { printf '[trixie] %s\n' "$*" >&2; }

make_chroot() {
  if [ -x "$DIR/usr/bin/python3" ]; then say "Debian 13 chroot present at $DIR"; return; fi
  say "making a Debian 13 chroot at $DIR (debootstrap)"
  rm -rf "$DIR"
  debootstrap --variant=minbase --include=python3,python3-venv,make,ca-certificates \
    trixie "$DIR" "$MIRROR" >/dev/null
}

unmount_all() {
  local m
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    m="$DIR/${MOUNTS[$i]}"
    mountpoint -q "$m" && umount -l "$m"
  done
  return 0
}

enter() {  # run a command in the chroot with a clean environment
  chroot "$DIR" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 CI="${CI:-}" HARNESS_DOCKER=skip "$@"
}

main() {
  [ "$(id -u)" -eq 0 ] || { echo "test-trixie: run as root (debootstrap and chroot need it)" >&2; exit 2; }
  command -v debootstrap >/dev/null || { echo "test-trixie: debootstrap is missing; run scripts/setup.sh" >&2; exit 2; }
  make_chroot
  cp /etc/ssl/certs/ca-certificates.crt "$DIR/etc/ssl/certs/ca-certificates.crt"
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$DIR/etc/pip.conf"
  cp /etc/resolv.conf "$DIR/etc/resolv.conf"
  trap unmount_all EXIT
  local m
  for m in "${MOUNTS[@]}"; do
    mkdir -p "$DIR/$m"; mountpoint -q "$DIR/$m" || mount --bind "/$m" "$DIR/$m"
  done
  # A fresh copy of the committed tree; the chroot's .venv survives between runs.
  mkdir -p "$DIR$WORK"
  find "$DIR$WORK" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
  git -C "$ROOT" archive HEAD | tar -x -C "$DIR$WORK"
  say "$(enter python3 --version) on $(enter sh -c '. /etc/os-release; echo "$PRETTY_NAME"')"
  local log="$DIR/tmp/test-trixie.log"
  enter make -C "$WORK" test ARGS='-m "not docker"' 2>&1 | tee "$log"
  enter sh -c "cd $WORK && .venv/bin/pytest scenarios/ --backend local -p no:cacheprovider -q" 2>&1 | tee -a "$log"
  if grep -n "DeprecationWarning" "$log"; then
    echo "test-trixie: the runs above warned of deprecations" >&2; exit 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
