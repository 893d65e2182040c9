#!/bin/bash
# Phoenix feature: step_ca
# Installs Smallstep's `step` CLI and the `step-ca` server from Smallstep's apt repository, and a
# systemd unit, step-ca.service, that serves the CA kept under /etc/step-ca (STEPPATH=/etc/step-ca:
# config/ca.json, its key password in ssl/ca_password.txt, as upstream lays it out). The unit is
# enabled, and started only once config/ca.json exists: creating the CA (`step ca init`, the
# passwords, the ACME provisioner, the root and root_ca.fingerprint exported to ssl/) is the
# application script's job, as upstream, and it starts the unit when it is done.
# Idempotent: installs only what is missing, rewrites the unit only when it differs.
# phoenix-check-mode: yes
# phoenix-reads:
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check

STEPPATH_DIR=/etc/step-ca
CA_CONFIG="$STEPPATH_DIR/config/ca.json"
CA_PASSWORD="$STEPPATH_DIR/ssl/ca_password.txt"
unit=/etc/systemd/system/step-ca.service

unit_text() {
    cat <<UNIT
[Unit]
Description=Smallstep step-ca certificate authority
After=network-online.target
Wants=network-online.target
# The CA does not exist until the application script has run \`step ca init\`.
ConditionPathExists=$CA_CONFIG

[Service]
Type=simple
Environment=STEPPATH=$STEPPATH_DIR
ExecStart=/usr/bin/step-ca $CA_CONFIG --password-file $CA_PASSWORD
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
}

binaries() { [ -x /usr/bin/step ] && [ -x /usr/bin/step-ca ]; }
unit_ok() { [ -f "$unit" ] && cmp -s <(unit_text) "$unit"; }
enabled() { systemctl is-enabled --quiet step-ca.service 2>/dev/null; }
# Running is only expected once there is a CA to serve.
serving() { [ ! -f "$CA_CONFIG" ] || systemctl is-active --quiet step-ca.service 2>/dev/null; }

if [ "$mode" = check ]; then
    if binaries && unit_ok && enabled && serving; then
        if [ -f "$CA_CONFIG" ]; then echo "step_ca: in place, serving $CA_CONFIG"
        else echo "step_ca: in place (no CA yet: the application script creates it)"; fi
        exit 0
    fi
    missing=()
    binaries || missing+=("binaries")
    unit_ok || missing+=("unit")
    enabled || missing+=("enabled")
    serving || missing+=("running")
    echo "step_ca: not in place (missing: ${missing[*]})"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! binaries; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends curl gpg ca-certificates
    install -d -m 0755 /etc/apt/keyrings
    [ -s /etc/apt/keyrings/smallstep.asc ] \
        || curl -fsSL https://packages.smallstep.com/keys/apt/repo-signing-key.gpg -o /etc/apt/keyrings/smallstep.asc
    list=/etc/apt/sources.list.d/smallstep.list
    repo="deb [signed-by=/etc/apt/keyrings/smallstep.asc] https://packages.smallstep.com/stable/debian debs main"
    if [ "$(cat "$list" 2>/dev/null)" != "$repo" ]; then echo "$repo" > "$list.new"; mv "$list.new" "$list"; fi
    apt-get update -q
    apt-get install -y -q step-cli step-ca
fi

# The ssl directory is often a bind mount (upstream shares it with the Traefik container): leave an
# existing one as it is.
[ -d "$STEPPATH_DIR" ] || install -d -m 0700 "$STEPPATH_DIR"
[ -d "$STEPPATH_DIR/ssl" ] || install -d -m 0700 "$STEPPATH_DIR/ssl"

changed=0
if ! unit_ok; then
    unit_text > "$unit.new"
    mv "$unit.new" "$unit"
    systemctl daemon-reload
    changed=1
fi
enabled || systemctl enable step-ca.service >/dev/null

if [ -f "$CA_CONFIG" ]; then
    if ! systemctl is-active --quiet step-ca.service; then
        systemctl start step-ca.service
    elif [ $changed = 1 ]; then
        systemctl restart step-ca.service
    fi
    echo "step_ca: $(/usr/bin/step-ca version 2>/dev/null | head -1), serving $CA_CONFIG"
else
    echo "step_ca: $(/usr/bin/step-ca version 2>/dev/null | head -1) installed; step-ca.service enabled," \
        "not started: no $CA_CONFIG yet (the application script creates the CA)"
fi
