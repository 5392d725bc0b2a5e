#!/bin/sh
# Install the Debian packages listed in .ci/packages (needs root or sudo).
set -eu
cd "$(dirname "$0")/.."
packages=$(grep -hv '^#' .ci/packages | tr '\n' ' ')
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $packages
