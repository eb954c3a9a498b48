#!/usr/bin/env bash
# Installs what voxflow's build, tests and demo need on a fresh Debian 12
# machine. Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(gcc make libsqlite3-dev libopenblas-dev libdnnl-dev
      python3-numpy python3-scipy python3-sklearn python3-torch python3-torchvision python3-pil
      python3-grpcio python3-protobuf python3-grpc-tools libjpeg62-turbo-dev
      slurm-wlm munge chromium protobuf-compiler dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
