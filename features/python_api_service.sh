#!/bin/bash
# Phoenix feature: python_api_service
# Installs Python 3 with pip and venv. Skips when they are present.
# phoenix-reads:
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
ok() { command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 && python3 -c 'import venv' 2>/dev/null; }
if ok; then echo "python_api_service: $(python3 --version)"; exit 0; fi
[ "$mode" = check ] && { echo "python_api_service: not installed"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 python3-pip python3-venv
python3 --version
