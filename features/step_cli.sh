#!/bin/bash
# Phoenix feature: step_cli
# Installs Smallstep's `step` CLI from its apt repository. Skips when /usr/bin/step exists.
# phoenix-reads:
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
if [ -x /usr/bin/step ]; then echo "step_cli: $(/usr/bin/step version 2>/dev/null | head -1)"; exit 0; fi
[ "$mode" = check ] && { echo "step_cli: not installed"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends curl gpg ca-certificates
install -d -m 0755 /etc/apt/keyrings
curl -fsSL https://packages.smallstep.com/keys/apt/repo-signing-key.gpg -o /etc/apt/keyrings/smallstep.asc
echo "deb [signed-by=/etc/apt/keyrings/smallstep.asc] https://packages.smallstep.com/stable/debian debs main" > /etc/apt/sources.list.d/smallstep.list
apt-get update -q
apt-get install -y -q step-cli
step version
