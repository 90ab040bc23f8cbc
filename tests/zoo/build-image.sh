#!/bin/sh
# A node image of Debian packages, as the zoo's container members build theirs (there is no
# registry here, and containers cannot reach the package mirrors):
#
#   build-image.sh IMAGE "PACKAGES" ["COMMANDS"]
#
# debootstraps a bookworm rootfs, installs PACKAGES in it with their services kept from
# starting on this host, runs COMMANDS in it (users, directories), and imports it as IMAGE.
# Nothing is done when IMAGE exists; a failed build leaves nothing behind.
set -eu
image=$1 packages=$2 commands=${3:-true}
docker image inspect "$image" >/dev/null 2>&1 && exit 0
echo "build-image.sh: building $image from Debian packages (debootstrap, a few minutes, once)"
root=$(mktemp -d /tmp/zoo-rootfs.XXXXXX)
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT  # set -e would end the trap at a failed umount, and the script with its code
chmod 755 "$root"  # the image's /: mktemp's 700 keeps every user but root from reading /etc/passwd
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/apt/apt.conf.d/99artifact-registry "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends $packages >/dev/null && $commands"
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
tar -C "$root" -c . | docker import - "$image" >/dev/null
