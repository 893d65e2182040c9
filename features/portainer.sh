#!/bin/bash
# Phoenix feature: portainer
# Runs Portainer in Docker, as the container's portainer_role says:
#   server (or primary, the VM files' name for it): PORTAINER_SERVER_IMAGE as container `portainer`,
#     ports 9443 (web UI, HTTPS with Portainer's own certificate), 8000 (Edge agent tunnel) and
#     9001 (published as upstream does), data in the volume portainer_data;
#   agent: PORTAINER_AGENT_IMAGE as container `portainer_agent`, port 9001 (the server adds it as
#     an environment; upstream's AGENT_CLUSTER_ADDR comes from the hypervisor file, which a guest
#     does not see, and only matters to a Swarm cluster);
#   none, infrastructure: nothing to run (upstream runs no Portainer for them either).
# Both restart=always. Needs Docker: add the docker feature before this one. The image tags are
# the constants below, not config keys. Idempotent: a running container of the right image is left
# alone, a stopped one is started, one of another image (or the other role's) is replaced; the
# server's data stays in its volume.
# phoenix-check-mode: yes
# phoenix-reads: portainer_role
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check

PORTAINER_SERVER_IMAGE=portainer/portainer-ce:latest
PORTAINER_AGENT_IMAGE=portainer/agent:latest

# config_key KEY: the string value of KEY in $PHOENIX_CONFIG (empty when absent).
config_key() {
    local f="$PHOENIX_CONFIG"
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg k "$1" '.[$k] // empty | strings' "$f"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print(v if isinstance(v, str) else "")' "$f" "$1"
    else
        sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" "$f" | head -n 1
    fi
}

if [ -z "${PHOENIX_CONFIG:-}" ] || [ ! -r "$PHOENIX_CONFIG" ]; then
    echo "portainer: PHOENIX_CONFIG does not name a readable file (Phoenix sets it; by hand, point it at a JSON file holding portainer_role)" >&2
    exit 1
fi
role=$(config_key portainer_role)
role="${role:-none}"
case "$role" in
    none | infrastructure)
        echo "portainer: role $role, nothing to run"; exit 0 ;;
    server | primary)
        name=portainer other=portainer_agent image=$PORTAINER_SERVER_IMAGE
        run_args=(-p 9443:9443 -p 9001:9001 -p 8000:8000
            -v /var/run/docker.sock:/var/run/docker.sock -v portainer_data:/data) ;;
    agent)
        name=portainer_agent other=portainer image=$PORTAINER_AGENT_IMAGE
        run_args=(-p 9001:9001
            -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/docker/volumes:/var/lib/docker/volumes) ;;
    *)
        echo "portainer: portainer_role \"$role\" is not one of none, server, agent, infrastructure, primary" >&2
        exit 1 ;;
esac

docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
# state NAME: "<image> <running>" of container NAME, empty when there is none.
state() { docker inspect -f '{{.Config.Image}} {{.State.Running}}' "$1" 2>/dev/null || true; }

if [ "$mode" = check ]; then
    docker_ok || { echo "portainer: role $role, but docker is not installed or not running (add the docker feature first)"; exit 1; }
    now=$(state "$name")
    [ "$now" = "$image true" ] && { echo "portainer: role $role, $name running $image"; exit 0; }
    echo "portainer: role $role, $name not running $image (now: ${now:-absent})"; exit 1
fi

if ! command -v docker >/dev/null 2>&1; then
    echo "portainer: role $role needs docker, which is not installed: add the docker feature first" >&2
    exit 1
fi
docker info >/dev/null 2>&1 || { echo "portainer: the docker daemon does not answer (systemctl status docker)" >&2; exit 1; }

# The other role's container holds port 9001: a role change replaces it.
if [ -n "$(state "$other")" ]; then
    echo "portainer: removing $other (role is now $role)"
    docker rm -f "$other" >/dev/null
fi

now=$(state "$name")
case "$now" in
    "$image true") echo "portainer: $name already running $image"; exit 0 ;;
    "$image false") docker start "$name" >/dev/null ;;
    "") docker run -d --name "$name" --restart=always "${run_args[@]}" "$image" >/dev/null ;;
    *)
        echo "portainer: replacing $name ($now) with $image"
        docker rm -f "$name" >/dev/null
        docker run -d --name "$name" --restart=always "${run_args[@]}" "$image" >/dev/null ;;
esac
for _ in $(seq 1 30); do [ "$(state "$name")" = "$image true" ] && break; sleep 1; done
if [ "$(state "$name")" != "$image true" ]; then
    echo "portainer: $name did not stay up" >&2
    docker logs --tail 30 "$name" >&2 || true
    exit 1
fi
echo "portainer: role $role, $name running $image"
