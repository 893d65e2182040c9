#!/bin/bash
# Phoenix feature: ollama
# Installs Ollama (the official release tarball) and runs it as a systemd service listening on
# 0.0.0.0:11434; checks that its API answers.
# phoenix-reads:
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
unit=/etc/systemd/system/ollama.service
answers() { curl -fsS --max-time 5 http://127.0.0.1:11434/api/tags >/dev/null 2>&1; }
if [ "$mode" = check ]; then
    command -v ollama >/dev/null 2>&1 && [ -f "$unit" ] && answers && { echo "ollama: in place"; exit 0; }
    echo "ollama: not in place"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v ollama >/dev/null 2>&1; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends curl ca-certificates zstd
    arch=$(dpkg --print-architecture)
    curl -fsSL "https://ollama.com/download/ollama-linux-${arch}.tgz" | tar -xz -C /usr
fi
id ollama >/dev/null 2>&1 || useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
cat > "$unit.new" <<'UNIT'
[Unit]
Description=Ollama
After=network-online.target

[Service]
User=ollama
Group=ollama
Environment=OLLAMA_HOST=0.0.0.0:11434
ExecStart=/usr/bin/ollama serve
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
if ! cmp -s "$unit.new" "$unit"; then mv "$unit.new" "$unit"; systemctl daemon-reload; else rm -f "$unit.new"; fi
systemctl enable --now ollama >/dev/null
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "ollama: API on :11434 does not answer" >&2; journalctl -u ollama -n 20 --no-pager >&2 || true; exit 1; }
echo "ollama: serving on :11434"
