#!/bin/bash
# Phoenix feature: vllm
# Installs vLLM into a virtual environment at /opt/vllm (version `vllm_version`, looked up at the
# top of vllm_engine_config and in its sections, default 0.10.2; installing needs a working GPU, so
# the `nvidia` feature on this container or its template, and the internet), then serves the model
# that vllm_engine_config names: the unit /etc/systemd/system/vllm_model_server.service runs
# vLLM's OpenAI-compatible API server with flags rendered from the config, and the script waits
# until /health answers and /v1/models lists the served model.
#
# Flags: every section (ModelConfig, CacheConfig, ParallelConfig, ServerConfig, any object) gives
# its keys as `--kebab-case` flags (snake_case and camelCase alike); true is a bare flag, false and
# null are dropped, a list is the flag followed by each item, an object is passed as compact JSON,
# anything else is `--flag value`. A later section overrides an earlier one. Legacy `parameters`
# (an object) fill in flags no section gave; legacy `args` (a list of words) go verbatim at the end.
# The server restarts only when its unit (so its arguments) changes or vLLM was (re)installed.
# phoenix-reads: vllm_engine_config
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
config="${PHOENIX_CONFIG:-}"
venv=/opt/vllm
service=vllm_model_server
unit=/etc/systemd/system/$service.service
python=/usr/bin/python3
health_timeout=900

# The renderer (python3: vLLM needs it anyway). Subcommands:
#   version CONFIG  -> the vllm_version to install
#   argv CONFIG     -> the server's flags, one word a line (nothing when no model is configured)
#   target WORDS..  -> probe host, port and served model name, one a line, taken from the flags
#   probe HOST PORT NAME -> exit 0 when /health answers 200 and /v1/models lists NAME
renderer=$(cat <<'PY'
import json, os, re, sys

def load(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    cfg = data.get("vllm_engine_config") if isinstance(data, dict) else None
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        sys.exit("vllm: vllm_engine_config must be an object")
    return cfg

def kebab(key):
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", str(key).strip().lstrip("-"))
    return key.replace("_", "-").lower()

def word(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)

def version(cfg):
    found = None
    for key, value in cfg.items():
        if kebab(key) == "vllm-version" and value is not None:
            found = value
        elif isinstance(value, dict) and key != "parameters":
            for k, v in value.items():
                if kebab(k) == "vllm-version" and v is not None:
                    found = v
    return str(found) if found is not None else "0.10.2"

def collect(items, flags):
    for key, value in items:
        name = kebab(key)
        if not name or name == "vllm-version":
            continue
        if name in flags:
            del flags[name]
        flags[name] = value

def argv(cfg):
    flags = {}
    collect(((k, v) for k, v in cfg.items()
             if k not in ("args", "parameters") and not isinstance(v, dict)), flags)
    for key, value in cfg.items():
        if key not in ("args", "parameters") and isinstance(value, dict):
            collect(value.items(), flags)
    params = cfg.get("parameters")
    if isinstance(params, dict):
        extra = {}
        collect(params.items(), extra)
        for name, value in extra.items():
            flags.setdefault(name, value)
    model = flags.get("model")
    if model is None or model is False or model == "":
        return []
    words = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        if value is True:
            words.append("--" + name)
        elif isinstance(value, list):
            if value:
                words.append("--" + name)
                words.extend(word(v) for v in value)
        else:
            words += ["--" + name, word(value)]
    args = cfg.get("args")
    if args is not None:
        if not isinstance(args, list):
            sys.exit("vllm: vllm_engine_config.args must be a list of words")
        words.extend(word(a) for a in args)
    for w in words:
        if "\n" in w or "\r" in w or "\0" in w:
            sys.exit("vllm: a flag value contains a line break: %r" % w)
    return words

def target(words):
    found = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("--") and "=" in w:
            name, value = w[2:].split("=", 1)
            found[name.replace("_", "-")] = value
        elif w.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            found[w[2:].replace("_", "-")] = words[i + 1]
            i += 1
        i += 1
    host = found.get("host") or ""
    if host in ("", "0.0.0.0", "::", "[::]", "localhost"):
        host = "127.0.0.1"
    return host, found.get("port") or "8000", found.get("served-model-name") or found.get("model", "")

def probe(host, port, name):
    import urllib.request
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    base = "http://%s:%s" % (host, port)
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            if r.status != 200:
                return 1
        with urllib.request.urlopen(base + "/v1/models", timeout=5) as r:
            data = json.load(r)
        ids = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
        return 0 if name in ids else 1
    except Exception:
        return 1

cmd = sys.argv[1]
if cmd == "version":
    print(version(load(sys.argv[2])))
elif cmd == "argv":
    for w in argv(load(sys.argv[2])):
        print(w)
elif cmd == "target":
    print("\n".join(target(sys.argv[2:])))
elif cmd == "probe":
    sys.exit(probe(*sys.argv[2:5]))
PY
)
render() { "$python" -c "$renderer" "$@"; }

installed() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c 'import vllm, sys; sys.exit(0 if vllm.__version__ == sys.argv[1] else 1)' "$version" 2>/dev/null
}
require_gpu() {
    nvidia-smi >/dev/null 2>&1 && return 0
    echo "vllm: nvidia-smi does not work here: add the nvidia feature (and gpu_assignment) first" >&2
    exit 1
}
apt_done=
install_build_deps() {
    [ -n "$apt_done" ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3 python3-venv python3-dev build-essential
    apt_done=1
}

# A systemd unit word: double-quoted, with \ and " escaped, % as %% and $ as $$.
unit_quote() {
    local w=$1
    w=${w//\\/\\\\}
    w=${w//\"/\\\"}
    w=${w//%/%%}
    w=${w//\$/\$\$}
    printf '"%s"' "$w"
}
render_unit() {
    local exec_line="ExecStart=$venv/bin/python -m vllm.entrypoints.openai.api_server" w
    for w in "${words[@]}"; do exec_line+=" $(unit_quote "$w")"; done
    cat <<UNIT
[Unit]
Description=vLLM OpenAI-compatible API server (Phoenix feature vllm)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=root
WorkingDirectory=$venv
Environment="PATH=$venv/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
$exec_line
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
}
healthy() { render probe "$probe_host" "$probe_port" "$served_name"; }

# --- installation -------------------------------------------------------------------------------
if [ ! -x "$python" ]; then
    [ "$mode" = check ] && { echo "vllm: not installed ($python is missing)"; exit 1; }
    require_gpu
    install_build_deps
fi
version=$(render version "$config")
installed_now=
if installed; then
    [ "$mode" = apply ] && echo "vllm: $version already installed in $venv"
else
    [ "$mode" = check ] && { echo "vllm: $version not installed in $venv"; exit 1; }
    require_gpu
    install_build_deps
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --upgrade pip
    "$venv/bin/python" -m pip install "vllm==$version"
    "$venv/bin/python" -c 'import vllm; print("vllm", vllm.__version__, "installed")'
    installed_now=1
fi

# --- the model server ---------------------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
render argv "$config" > "$tmp/argv"
words=()
mapfile -t words < "$tmp/argv"
if [ "${#words[@]}" -eq 0 ]; then
    note=""
    [ -f "$unit" ] && note=" (the existing $service.service is left as it is)"
    echo "vllm: $version installed; vllm_engine_config names no model, so nothing is served$note"
    exit 0
fi
mapfile -t probe_target < <(render target "${words[@]}")
probe_host=${probe_target[0]}; probe_port=${probe_target[1]}; served_name=${probe_target[2]}

if [ "$mode" = check ]; then
    if ! render_unit | cmp -s - "$unit"; then
        echo "vllm: $version installed; $unit is missing or differs from vllm_engine_config"; exit 1
    fi
    if ! systemctl is-active --quiet "$service"; then
        echo "vllm: $version installed; $service is not active"; exit 1
    fi
    if ! healthy; then
        echo "vllm: $version installed; $service does not serve $served_name on $probe_host:$probe_port"; exit 1
    fi
    echo "vllm: $version serving $served_name on $probe_host:$probe_port"; exit 0
fi

render_unit > "$unit.new"
if ! cmp -s "$unit.new" "$unit"; then
    mv "$unit.new" "$unit"
    systemctl daemon-reload
    systemctl enable "$service" >/dev/null 2>&1
    echo "vllm: $unit written; (re)starting $service"
    systemctl restart "$service"
elif [ -n "$installed_now" ]; then
    rm -f "$unit.new"
    systemctl enable "$service" >/dev/null 2>&1
    echo "vllm: vLLM $version was installed; restarting $service"
    systemctl restart "$service"
else
    rm -f "$unit.new"
    systemctl enable --now "$service" >/dev/null 2>&1
fi

# Crashes since now: restarts systemd made, plus one when a restart is pending. One crash is
# tolerated (vLLM can fail once while a previous instance still holds GPU memory); two are not.
restarts() { systemctl show -p NRestarts --value "$service" 2>/dev/null || echo 0; }
crashes() {
    local n
    n=$(( $(restarts) - restarts_before ))
    [ "$(systemctl show -p SubState --value "$service" 2>/dev/null)" = auto-restart ] && n=$((n + 1))
    echo "$n"
}
restarts_before=$(restarts)
deadline=$((SECONDS + health_timeout))
ok=
while :; do
    healthy && { ok=1; break; }
    if systemctl is-failed --quiet "$service"; then
        echo "vllm: $service failed" >&2; break
    fi
    if [ "$(crashes)" -ge 2 ]; then
        echo "vllm: $service exited twice since it was (re)started" >&2; break
    fi
    [ "$SECONDS" -ge "$deadline" ] && { echo "vllm: no answer within ${health_timeout}s" >&2; break; }
    sleep 2
done
if [ -z "$ok" ]; then
    echo "vllm: $service does not serve $served_name on $probe_host:$probe_port (/health, /v1/models)" >&2
    journalctl -u "$service" -n 30 --no-pager >&2 || true
    exit 1
fi
echo "vllm: $version serving $served_name on $probe_host:$probe_port"
