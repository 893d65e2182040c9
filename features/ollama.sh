#!/bin/bash
# Phoenix feature: ollama
# Installs Ollama (the official release tarball, when `ollama` is missing) and runs it as a systemd
# service listening on 0.0.0.0:11434; checks that its API answers, then pulls each model named in
# `ollama_models` (a list such as ["llama3.2:1b", "nomic-embed-text"]) that `ollama list` lacks.
# The service restarts only when its unit changes.
# phoenix-reads: ollama_models
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
config="${PHOENIX_CONFIG:-}"
unit=/etc/systemd/system/ollama.service
export OLLAMA_HOST=127.0.0.1:11434
export DEBIAN_FRONTEND=noninteractive

answers() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 "http://$OLLAMA_HOST/api/tags" >/dev/null 2>&1
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
            "http://$OLLAMA_HOST/api/tags" >/dev/null 2>&1
    fi
}
render_unit() {
    cat <<'UNIT'
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
}

# The models to have, one a line (validated: a list of strings without blanks).
read_models() {
    [ -n "$config" ] && [ -s "$config" ] || return 0
    if command -v jq >/dev/null 2>&1; then
        jq -r '(.ollama_models // [])
            | if type == "array" then .[] else error("ollama_models must be a list") end
            | if type == "string" and test("^[^\\s]+$") then . else error("not a model name: \(tojson)") end' "$config"
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$config" <<'PY'
import json, re, sys
models = json.load(open(sys.argv[1], encoding="utf-8")).get("ollama_models") or []
if not isinstance(models, list):
    sys.exit("ollama: ollama_models must be a list")
for m in models:
    if not isinstance(m, str) or not re.fullmatch(r"\S+", m):
        sys.exit("ollama: not a model name: %s" % json.dumps(m))
    print(m)
PY
    else
        echo "ollama: no jq and no python3 to read ollama_models" >&2; return 1
    fi
}
# The name as `ollama list` shows it: the tag defaults to latest.
canonical() { case "${1##*/}" in *:*) printf '%s\n' "$1" ;; *) printf '%s:latest\n' "$1" ;; esac; }
have_model() { printf '%s\n' "$present" | grep -qxF -- "$(canonical "$1")"; }
list_present() { ollama list | awk 'NR > 1 && NF { print $1 }'; }

models=()
if [ -n "$config" ] && [ -s "$config" ] && ! command -v jq >/dev/null 2>&1 && ! command -v python3 >/dev/null 2>&1; then
    if [ "$mode" = check ]; then echo "ollama: cannot read ollama_models (no jq, no python3)"; exit 1; fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends jq
fi
model_list=$(read_models)
[ -n "$model_list" ] && mapfile -t models <<< "$model_list"

if [ "$mode" = check ]; then
    command -v ollama >/dev/null 2>&1 || { echo "ollama: not installed"; exit 1; }
    render_unit | cmp -s - "$unit" || { echo "ollama: $unit is missing or differs"; exit 1; }
    answers || { echo "ollama: API on :11434 does not answer"; exit 1; }
    present=$(list_present)
    missing=()
    for m in "${models[@]}"; do have_model "$m" || missing+=("$m"); done
    if [ "${#missing[@]}" -gt 0 ]; then echo "ollama: serving; models missing: ${missing[*]}"; exit 1; fi
    echo "ollama: serving on :11434 with ${#models[@]} configured model(s) present"; exit 0
fi

if ! command -v ollama >/dev/null 2>&1; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends curl ca-certificates zstd
    arch=$(dpkg --print-architecture)
    curl -fsSL "https://ollama.com/download/ollama-linux-${arch}.tgz" | tar -xz -C /usr
fi
id ollama >/dev/null 2>&1 || useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
render_unit > "$unit.new"
if ! cmp -s "$unit.new" "$unit"; then
    mv "$unit.new" "$unit"
    systemctl daemon-reload
    systemctl enable ollama >/dev/null 2>&1
    echo "ollama: $unit written; (re)starting ollama"
    systemctl restart ollama
else
    rm -f "$unit.new"
    systemctl enable --now ollama >/dev/null 2>&1
fi
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "ollama: API on :11434 does not answer" >&2; journalctl -u ollama -n 20 --no-pager >&2 || true; exit 1; }
echo "ollama: serving on :11434"

present=$(list_present)
for m in "${models[@]}"; do
    if have_model "$m"; then
        echo "ollama: $m present"
    else
        echo "ollama: pulling $m"
        ollama pull "$m"
    fi
done
present=$(list_present)
for m in "${models[@]}"; do
    have_model "$m" || { echo "ollama: $m is still not listed after pulling it" >&2; exit 1; }
done
[ "${#models[@]}" -gt 0 ] && echo "ollama: models present: ${models[*]}"
exit 0
