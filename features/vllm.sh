#!/bin/bash
# Phoenix feature: vllm
# Installs vLLM into a virtual environment at /opt/vllm (version `vllm_engine_config.vllm_version`,
# default 0.10.2). Needs a working GPU (the `nvidia` feature on this container or its template). The
# model server itself is the application script's job (it reads vllm_engine_config).
# phoenix-reads: vllm_engine_config
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
version=$(sed -n 's/.*"vllm_version": *"\([^"]*\)".*/\1/p' "${PHOENIX_CONFIG:-/dev/null}" 2>/dev/null | head -n 1)
version="${version:-0.10.2}"
venv=/opt/vllm
installed() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import vllm, sys; sys.exit(0 if vllm.__version__ == sys.argv[1] else 1)' "$version" 2>/dev/null; }
if [ "$mode" = check ]; then
    installed && { echo "vllm: $version in $venv"; exit 0; }
    echo "vllm: $version not installed"; exit 1
fi
if ! nvidia-smi >/dev/null 2>&1; then
    echo "vllm: nvidia-smi does not work here: add the nvidia feature (and gpu_assignment) first" >&2
    exit 1
fi
installed && { echo "vllm: $version already installed"; exit 0; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 python3-venv python3-dev build-essential
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install "vllm==$version"
"$venv/bin/python" -c 'import vllm; print("vllm", vllm.__version__)'
