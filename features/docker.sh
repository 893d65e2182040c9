#!/bin/bash
# Phoenix feature: docker
# Installs Docker Engine from Docker's apt repository, with the compose plugin. In a container
# (LXC) it uses the fuse-overlayfs storage driver. When the NVIDIA driver is present
# (`nvidia-smi` works) it adds the NVIDIA container toolkit and makes `nvidia` the default
# runtime. Idempotent: each part is skipped when already in place.
# phoenix-reads:
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
gpu=0; command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1 && gpu=1

installed() { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }
toolkit() { [ $gpu = 0 ] || command -v nvidia-ctk >/dev/null 2>&1; }

if [ "$mode" = check ]; then
    installed && toolkit && { echo "docker: in place"; exit 0; }
    echo "docker: not in place (gpu present: $gpu)"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# shellcheck source=/dev/null
. /etc/os-release
if ! installed; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends ca-certificates curl gnupg fuse-overlayfs
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/${ID}/gpg" -o /etc/apt/keyrings/docker.asc
    echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/${ID} ${VERSION_CODENAME} stable" > /etc/apt/sources.list.d/docker.list
    apt-get update -q
    apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
fi
mkdir -p /etc/docker
want='{"storage-driver": "fuse-overlayfs"}'
if [ $gpu = 1 ]; then
    if ! command -v nvidia-ctk >/dev/null 2>&1; then
        curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor --yes -o /etc/apt/keyrings/nvidia-container-toolkit.gpg
        curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
            | sed 's#deb https://#deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.gpg] https://#' > /etc/apt/sources.list.d/nvidia-container-toolkit.list
        apt-get update -q
        apt-get install -y -q nvidia-container-toolkit
    fi
    want='{"storage-driver": "fuse-overlayfs", "default-runtime": "nvidia", "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}}'
fi
if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]; then
    printf '%s' "$want" > /etc/docker/daemon.json
    systemctl restart docker
fi
systemctl enable --now docker >/dev/null
docker --version
