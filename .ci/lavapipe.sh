#!/usr/bin/env bash
# Installs Mesa's lavapipe (software Vulkan on the CPU) so that WebGPU through Dawn finds an adapter.
# Run as root on Debian 12 (bookworm). Idempotent: safe to run again.
#
# Why backports: bookworm's mesa-vulkan-drivers 22.3 is too old for Dawn (no adapter);
# bookworm-backports carries Mesa 25. Dawn also needs the Vulkan loader (libvulkan1) and the
# GL dispatch library (libglvnd0): without libglvnd0, requestAdapter() returns null.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "lavapipe.sh: run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# 1. Add bookworm-backports unless some apt source already names it.
if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
  echo "lavapipe.sh: bookworm-backports already in apt sources"
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  # This machine uses the deb822 format (debian.sources): follow it.
  cat > /etc/apt/sources.list.d/bookworm-backports.sources <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: $keyring
EOF
  echo "lavapipe.sh: added /etc/apt/sources.list.d/bookworm-backports.sources"
else
  # Older one-line format.
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
  echo "lavapipe.sh: added /etc/apt/sources.list.d/bookworm-backports.list"
fi

# 2. Install Mesa's Vulkan drivers from backports, plus the loader and GL dispatch library.
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 libglvnd0

# 3. Report what is installed and where the lavapipe ICD lives.
dpkg-query -W -f='lavapipe.sh: ${Package} ${Version}\n' mesa-vulkan-drivers libvulkan1 libglvnd0
ls /usr/share/vulkan/icd.d/ | sed 's/^/lavapipe.sh: ICD /'
