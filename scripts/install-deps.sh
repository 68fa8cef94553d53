#!/usr/bin/env bash
# Installs mambadna's build and test dependencies from Debian 12 packages (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config \
  libhts-dev libboost-program-options-dev libboost-context-dev libhdf5-dev catch2 libtbb-dev libopenblas-dev \
  samtools bcftools tabix hdf5-tools python3-h5py python3-numpy python3-torch >/dev/null
