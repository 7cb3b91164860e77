#!/bin/sh
# The Debian/Ubuntu packages this project needs on the controller: python3 and python3-venv for the
# virtual environment of README.md's two commands, and what the lab (python3 -m tests.lab) and the
# end-to-end tests run: real OpenSSH servers, BusyBox ash (the router's shell), WireGuard,
# nftables, HAProxy, zbarimg (reads the QR codes back), zsh, awk and sudo of the fake Macs.
#
#     sh tests/lab/debian-packages.sh
#
# The one list: README.md's commands and .ci/run both run this script. It installs only what is
# missing (apt-get needs root: it uses sudo when not root) and changes nothing when all are
# installed, so a normal user can run the test command once root has installed them.
set -eu

PACKAGES="python3 python3-venv openssh-server openssh-client busybox util-linux coreutils
wireguard-tools wireguard-go nftables iproute2 iputils-ping curl haproxy zbar-tools
zsh original-awk sudo"

missing=""
for p in $PACKAGES; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "debian-packages: all installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "debian-packages: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
