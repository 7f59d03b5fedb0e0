#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian's archive.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libfuse3-dev fuse3 libcli11-dev nlohmann-json3-dev libfmt-dev \
  libhnswlib-dev libfaiss-dev gnuplot-nox \
  util-linux e2fsprogs python3 fio >/dev/null
