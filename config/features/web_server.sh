#!/bin/sh
# Example user feature (found in <config-dir>/features/): serves /srv/www on port 8080 with
# busybox httpd, started now and at every boot. Offline; idempotent.
# phoenix-reads: name
set -eu
mode="${PHOENIX_MODE:-apply}"
[ "${1:-}" = "--check" ] && mode=check

unit=/etc/systemd/system/phoenix-web.service
if [ "$mode" = check ]; then
    [ -f "$unit" ] && [ -f /srv/www/index.html ] && exit 0
    exit 1
fi

mkdir -p /srv/www
[ -f /srv/www/index.html ] || printf 'hello from %s\n' "${PHOENIX_GUEST_NAME:-phoenix}" > /srv/www/index.html
cat > "$unit.tmp" <<'UNIT'
[Unit]
Description=Phoenix example web server
After=network.target

[Service]
ExecStart=/bin/busybox httpd -f -p 8080 -h /srv/www
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
if ! cmp -s "$unit.tmp" "$unit" 2>/dev/null; then
    mv "$unit.tmp" "$unit"
    systemctl daemon-reload 2>/dev/null || true
else
    rm -f "$unit.tmp"
fi
systemctl enable phoenix-web.service >/dev/null 2>&1 || ln -sf "$unit" /etc/systemd/system/multi-user.target.wants/phoenix-web.service
systemctl restart phoenix-web.service 2>/dev/null || (busybox pgrep -f 'httpd -f -p 8080' >/dev/null || (busybox httpd -p 8080 -h /srv/www))
echo "web_server: serving /srv/www on :8080"
