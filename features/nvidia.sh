#!/bin/bash
# Phoenix feature: nvidia
# Installs the NVIDIA driver's user-space part inside a container whose GPUs the host passes
# through (`gpu_assignment`): the same driver version as the host's kernel module, from the
# runfile (PHOENIX_NVIDIA_RUNFILE_URL) without a kernel module, then the CUDA toolkit from
# PHOENIX_NVIDIA_REPO_URL. Skips what is in place; checks that nvidia-smi sees the GPUs.
# phoenix-reads: nvidia
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
want="${PHOENIX_NVIDIA_DRIVER_VERSION:-}"
have() { nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1; }

# Device nodes come from the host (gpu_assignment); wait briefly for them after a start.
[ "$mode" = check ] || for _ in $(seq 1 30); do [ -e /dev/nvidiactl ] && break; sleep 1; done
if [ ! -e /dev/nvidiactl ]; then
    echo "nvidia: /dev/nvidiactl is missing: set gpu_assignment and load the driver on the host" >&2
    exit 1
fi

current=$(have || true)
if [ "$mode" = check ]; then
    if [ -n "$current" ] && { [ -z "$want" ] || [ "$current" = "$want" ]; } && { command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; }; then
        echo "nvidia: driver $current"; exit 0
    fi
    echo "nvidia: driver ${current:-absent}, wanted ${want:-any}"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ -z "$current" ] || { [ -n "$want" ] && [ "$current" != "$want" ]; }; then
    url="${PHOENIX_NVIDIA_RUNFILE_URL:?nvidia: nvidia_runfile_url is not set}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends curl ca-certificates kmod pkg-config libglvnd-dev
    run=/var/tmp/nvidia-installer.run
    curl -fsSL "$url" -o "$run"
    sh "$run" --silent --no-kernel-module --no-x-check --no-nouveau-check --no-nvidia-modprobe --no-dkms --no-questions --ui=none
    rm -f "$run"
fi
if [ -n "${PHOENIX_NVIDIA_REPO_URL:-}" ] && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    keyring=/usr/share/keyrings/cuda-archive-keyring.gpg
    curl -fsSL "${PHOENIX_NVIDIA_REPO_URL%/}/3bf863cc.pub" | gpg --dearmor --yes -o "$keyring"
    echo "deb [signed-by=$keyring] ${PHOENIX_NVIDIA_REPO_URL%/}/ /" > /etc/apt/sources.list.d/cuda.list
    apt-get update -q
    apt-get install -y -q cuda-toolkit
fi
nvidia-smi
