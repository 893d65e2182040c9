#!/bin/bash
# Phoenix feature: traefik
# Installs Traefik from its GitHub release tarball for this architecture (checksum verified) as
# /usr/local/bin/traefik; creates /etc/traefik, /etc/traefik/dynamic and /var/log/traefik; writes a
# default /etc/traefik/traefik.yml (entrypoints web :80 and websecure :443, the file provider on
# /etc/traefik/dynamic) only when there is none, so a configuration written since is kept; installs
# traefik.service and enables it. It does not start it: as upstream, that is the application
# script's job once the configuration and certificates are in place (a running one is restarted
# when the binary or the unit changes).
# The version is TRAEFIK_VERSION below (v3.0.0, as upstream), not a config key: the guest's JSON
# has no traefik_version. Edit the constant (or copy this script into your features directory) to
# change it; the step re-runs because its body changed.
# When bootstrap_ca_url is set and `step` is installed (the step_cli feature), it bootstraps trust
# in that CA with `step ca bootstrap --install` (STEPPATH /root/.step). That needs the root's
# fingerprint, read from /etc/step-ca/ssl/root_ca.fingerprint (upstream bind-mounts the step-ca
# container's ssl directory there); without it the bootstrap is skipped with a message.
# phoenix-check-mode: yes
# phoenix-reads: bootstrap_ca_url
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check

TRAEFIK_VERSION=v3.0.0
bin=/usr/local/bin/traefik
conf_dir=/etc/traefik
static="$conf_dir/traefik.yml"
unit=/etc/systemd/system/traefik.service
ca_url="${PHOENIX_BOOTSTRAP_CA_URL:-}"
fp_file=/etc/step-ca/ssl/root_ca.fingerprint
steppath=/root/.step

unit_text() {
    cat <<UNIT
[Unit]
Description=Traefik reverse proxy
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=$bin --configfile=$static
# Traefik reopens its log files on USR1 (log rotation); its static configuration needs a restart.
ExecReload=/bin/kill -USR1 \$MAINPID
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
}

static_text() {
    cat <<'YAML'
# Default static configuration, written by Phoenix's traefik feature because there was none.
# Phoenix never overwrites this file: edit or replace it. Routers and services go in
# /etc/traefik/dynamic/*.yml, which Traefik watches.
entryPoints:
  web:
    address: ":80"
  websecure:
    address: ":443"
providers:
  file:
    directory: /etc/traefik/dynamic
    watch: true
log:
  level: INFO
  filePath: /var/log/traefik/traefik.log
accessLog:
  filePath: /var/log/traefik/access.log
YAML
}

# json_get FILE KEY: the string value of a top-level KEY of a JSON file (empty when absent).
json_get() {
    [ -r "$1" ] || return 0
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg k "$2" '.[$k] // empty | strings' "$1"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print(v if isinstance(v, str) else "")' "$1" "$2"
    else
        sed -n "s/.*\"$2\" *: *\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1
    fi
}

installed_version() { "$bin" version 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'; }
binary_ok() { [ -x "$bin" ] && [ "$(installed_version)" = "${TRAEFIK_VERSION#v}" ]; }
dirs_ok() { [ -d "$conf_dir" ] && [ -d "$conf_dir/dynamic" ] && [ -d /var/log/traefik ]; }
unit_ok() { [ -f "$unit" ] && cmp -s <(unit_text) "$unit"; }
enabled() { systemctl is-enabled --quiet traefik.service 2>/dev/null; }
fingerprint() { [ -s "$fp_file" ] && tr -d '[:space:]' < "$fp_file"; }
# Whether a CA bootstrap is wanted and can be done here.
bootstrap_wanted() { [ -n "$ca_url" ] && command -v step >/dev/null 2>&1 && [ -s "$fp_file" ]; }
bootstrapped() {
    local defaults="$steppath/config/defaults.json"
    [ "$(json_get "$defaults" ca-url)" = "$ca_url" ] \
        && [ "$(json_get "$defaults" fingerprint)" = "$(fingerprint)" ] \
        && [ -s "$steppath/certs/root_ca.crt" ]
}
trust_ok() { ! bootstrap_wanted || bootstrapped; }

if [ "$mode" = check ]; then
    if binary_ok && dirs_ok && [ -f "$static" ] && unit_ok && enabled && trust_ok; then
        echo "traefik: in place ($TRAEFIK_VERSION)"; exit 0
    fi
    missing=()
    have=$(installed_version || true)
    binary_ok || missing+=("binary $TRAEFIK_VERSION (have: ${have:-none})")
    dirs_ok || missing+=("directories")
    [ -f "$static" ] || missing+=("$static")
    unit_ok || missing+=("unit")
    enabled || missing+=("enabled")
    trust_ok || missing+=("CA bootstrap")
    echo "traefik: not in place (missing: ${missing[*]})"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
restart=0
if ! binary_ok; then
    command -v curl >/dev/null 2>&1 || { apt-get update -q; apt-get install -y -q --no-install-recommends curl ca-certificates; }
    arch=$(dpkg --print-architecture)
    case "$arch" in
        armhf) arch=armv7 ;;
        armel) arch=armv6 ;;
        i386) arch=386 ;;
    esac
    base="https://github.com/traefik/traefik/releases/download/$TRAEFIK_VERSION"
    tarball="traefik_${TRAEFIK_VERSION}_linux_${arch}.tar.gz"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 "$base/$tarball" -o "$tmp/$tarball"
    curl -fsSL --retry 3 "$base/traefik_${TRAEFIK_VERSION}_checksums.txt" -o "$tmp/checksums.txt"
    grep -q " $tarball\$" "$tmp/checksums.txt" || { echo "traefik: no checksum for $tarball" >&2; exit 1; }
    (cd "$tmp" && grep " $tarball\$" checksums.txt | sha256sum -c --quiet -)
    tar -xzf "$tmp/$tarball" -C "$tmp" traefik
    install -m 0755 "$tmp/traefik" "$bin.new"
    mv "$bin.new" "$bin"
    restart=1
fi

for d in "$conf_dir" "$conf_dir/dynamic" /var/log/traefik; do [ -d "$d" ] || install -d -m 0755 "$d"; done
if [ ! -e "$static" ]; then
    static_text > "$static.new"
    chmod 0644 "$static.new"
    mv "$static.new" "$static"
fi

if ! unit_ok; then
    unit_text > "$unit.new"
    mv "$unit.new" "$unit"
    systemctl daemon-reload
    restart=1
fi
enabled || systemctl enable traefik.service >/dev/null
# Not started here; only one that already runs is restarted onto the new binary or unit.
[ $restart = 0 ] || systemctl try-restart traefik.service

if [ -n "$ca_url" ]; then
    if ! command -v step >/dev/null 2>&1; then
        echo "traefik: bootstrap_ca_url is set but step is not installed (add the step_cli feature before traefik): CA bootstrap skipped"
    elif [ ! -s "$fp_file" ]; then
        echo "traefik: no $fp_file (the step-ca container's ssl directory is not mounted here): CA bootstrap against $ca_url skipped"
    elif bootstrapped; then
        echo "traefik: CA $ca_url already bootstrapped"
    else
        STEPPATH="$steppath" step ca bootstrap --ca-url "$ca_url" --fingerprint "$(fingerprint)" --install --force
    fi
fi
echo "traefik: $(installed_version || true) installed, traefik.service enabled"
