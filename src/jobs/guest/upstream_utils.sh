#!/bin/bash
# Phoenix's stand-in for Phoenix Hypervisor's phoenix_hypervisor_common_utils.sh, for use INSIDE a
# guest only. Phoenix stages it as /tmp/phoenix_run/phoenix_hypervisor_common_utils.sh, next to an
# upstream application script (phoenix_hypervisor_lxc_*.sh) and copies of the config files with
# their secrets removed:
#
#   phoenix_lxc_configs.json  phoenix_vm_configs.json  phoenix_hypervisor_config.json
#
# Upstream scripts source it (by the fixed path, or from their own directory) and call the helpers
# below. Inside a guest there is no pct: pct_exec runs the command here and run_pct_push copies.
#
# Like the original it turns on `set -e` and `set -o pipefail` in the script that sources it. It
# also works under `set -u`, which some upstream scripts turn on before sourcing it. The config
# helpers need jq in the guest (the base_setup feature installs it).

set -e
set -o pipefail

# --- Where the staged files are: the directory of this file ------------------------------------

_phoenix_utils_dir() {
    local src="${BASH_SOURCE[0]:-}" dir=""
    if [ -n "$src" ]; then
        dir=$(cd -- "$(dirname -- "$src")" >/dev/null 2>&1 && pwd) || dir=""
    fi
    printf '%s\n' "${dir:-/tmp/phoenix_run}"
}

# Upstream's name for this directory; kept for scripts that look at it.
SCRIPT_DIR_FOR_CONFIG=$(_phoenix_utils_dir)
export SCRIPT_DIR_FOR_CONFIG
export HYPERVISOR_CONFIG_FILE="${SCRIPT_DIR_FOR_CONFIG}/phoenix_hypervisor_config.json"
export LXC_CONFIG_FILE="${SCRIPT_DIR_FOR_CONFIG}/phoenix_lxc_configs.json"
export VM_CONFIG_FILE="${SCRIPT_DIR_FOR_CONFIG}/phoenix_vm_configs.json"
# The schemas are not staged; the names are set because upstream sets them.
export LXC_CONFIG_SCHEMA_FILE="${SCRIPT_DIR_FOR_CONFIG}/phoenix_lxc_configs.schema.json"
export VM_CONFIG_SCHEMA_FILE="${SCRIPT_DIR_FOR_CONFIG}/phoenix_vm_configs.schema.json"
export MAIN_LOG_FILE="/var/log/phoenix_hypervisor.log"
# Upstream always logs debug lines; a caller may turn them off with PHOENIX_DEBUG=false.
export PHOENIX_DEBUG="${PHOENIX_DEBUG:-true}"

# --- Environment --------------------------------------------------------------------------------

# Upstream forces en_US.UTF-8; a minimal guest often lacks that locale, so fall back to C.UTF-8
# rather than have every program warn about it.
case "$(locale -a 2>/dev/null || true)" in
    *en_US.utf8* | *en_US.UTF-8*) _phoenix_locale="en_US.UTF-8" ;;
    *) _phoenix_locale="C.UTF-8" ;;
esac
export LANG="$_phoenix_locale"
export LC_ALL="$_phoenix_locale"
unset _phoenix_locale
export PATH="/usr/local/bin:${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}"

# --- Colours (upstream's names; scripts may use them in their own output) -----------------------

# shellcheck disable=SC2034  # part of the interface for the scripts that source this file
COLOR_GREEN='\033[0;32m'
# shellcheck disable=SC2034
COLOR_RED='\033[0;31m'
# shellcheck disable=SC2034
COLOR_YELLOW='\033[1;33m'
# shellcheck disable=SC2034
COLOR_BLUE='\033[0;34m'
# shellcheck disable=SC2034
COLOR_RESET='\033[0m'

# --- Logging ------------------------------------------------------------------------------------
#
# Every line goes to stderr and is appended to $MAIN_LOG_FILE:
#   2025-01-31 12:00:00 [INFO] phoenix_hypervisor_lxc_vllm.sh: message
# The name is that of the outermost script (the application script). Backslash escapes in the
# message (such as \n) are expanded, as upstream's `echo -e` does. Colour is used only when stderr
# is a terminal, and never in the log file. A log file that cannot be written is skipped.

_phoenix_script_name() {
    local n=${#BASH_SOURCE[@]}
    if [ "$n" -gt 0 ]; then
        basename -- "${BASH_SOURCE[$((n - 1))]}"
    else
        basename -- "$0"
    fi
}

# _phoenix_log LEVEL COLOUR MESSAGE...
_phoenix_log() {
    local level="$1" colour="$2" line
    shift 2
    line="$(date '+%Y-%m-%d %H:%M:%S') [${level}] $(_phoenix_script_name): $*"
    if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
        printf '%b%b%b\n' "$colour" "$line" "$COLOR_RESET" >&2
    else
        printf '%b\n' "$line" >&2
    fi
    { printf '%b\n' "$line" >>"$MAIN_LOG_FILE"; } 2>/dev/null || true
}

log_debug() {
    if [ "${PHOENIX_DEBUG:-}" = "true" ]; then
        _phoenix_log DEBUG "$COLOR_BLUE" "$@"
    fi
}

log_info() { _phoenix_log INFO "$COLOR_GREEN" "$@"; }

log_success() { _phoenix_log SUCCESS "$COLOR_GREEN" "$@"; }

log_warn() { _phoenix_log WARN "$COLOR_YELLOW" "$@"; }

log_error() { _phoenix_log ERROR "$COLOR_RED" "$@"; }

# Logs and ends the script with status 1 (inside $(...) it ends only that subshell, as upstream's).
log_fatal() {
    _phoenix_log FATAL "$COLOR_RED" "$@"
    exit 1
}

# Logs standard input line by line, indented, to stdout and the log file:
#   journalctl -u foo -n 50 | log_plain_output
log_plain_output() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        printf '    | %s\n' "$line"
        { printf '    | %s\n' "$line" >>"$MAIN_LOG_FILE"; } 2>/dev/null || true
    done
}

# setup_logging FILE: makes sure FILE and its directory exist.
setup_logging() {
    local log_file="${1:-$MAIN_LOG_FILE}"
    mkdir -p -- "$(dirname -- "$log_file")" || log_fatal "Failed to create log directory for $log_file"
    touch -- "$log_file" || log_fatal "Failed to create log file: $log_file"
}

# exit_script CODE: logs the outcome and exits with CODE.
exit_script() {
    local code="${1:-0}"
    case "$code" in
        '' | *[!0-9]*) code=1 ;;
    esac
    if [ "$code" -eq 0 ]; then
        log_info "Script completed successfully."
    else
        log_error "Script failed with exit code $code."
    fi
    exit "$code"
}

# --- Commands "in the container" (that is, here) ------------------------------------------------

# pct_exec CTID [--] COMMAND [ARGS...]: runs COMMAND here; returns its status.
pct_exec() {
    local ctid="${1:-}" rc=0
    [ "$#" -gt 0 ] && shift
    if [ "${1:-}" = "--" ]; then
        shift
    fi
    if [ "$#" -eq 0 ]; then
        log_error "pct_exec: no command given (CTID ${ctid})."
        return 1
    fi
    log_info "Executing command inside container: $*"
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log_error "Command failed inside container with exit code ${rc}: '$*'"
        return "$rc"
    fi
    return 0
}

# pct_exec_silent CTID [--] COMMAND [ARGS...]: the same, without output or logging.
pct_exec_silent() {
    [ "$#" -gt 0 ] && shift
    if [ "${1:-}" = "--" ]; then
        shift
    fi
    [ "$#" -gt 0 ] || return 1
    "$@" >/dev/null 2>&1
}

# run_pct_push CTID SOURCE DEST [ATTEMPTS=3] [DELAY_S=5]: copies SOURCE to DEST (creating DEST's
# directory), checks DEST is there, retries; fatal after the last attempt.
run_pct_push() {
    local ctid="${1:-}" src="${2:-}" dest="${3:-}" attempts="${4:-3}" delay="${5:-5}"
    local attempt=1 output rc
    if [ -z "$src" ] || [ -z "$dest" ]; then
        log_fatal "run_pct_push: usage: run_pct_push CTID SOURCE DEST [ATTEMPTS] [DELAY]"
    fi
    if ! mkdir -p -- "$(dirname -- "$dest")"; then
        log_fatal "Failed to create directory '$(dirname -- "$dest")' in CTID ${ctid}."
    fi
    while [ "$attempt" -le "$attempts" ]; do
        log_info "Attempt ${attempt}/${attempts}: copying '${src}' to '${dest}' in CTID ${ctid}..."
        rc=0
        output=$(cp -- "$src" "$dest" 2>&1) || rc=$?
        if [ "$rc" -eq 0 ] && [ -f "$dest" ]; then
            log_success "File copied and verified in CTID ${ctid}: ${dest}"
            return 0
        fi
        log_error "Copy of '${src}' to '${dest}' failed (exit code ${rc}). ${output}"
        if [ "$attempt" -lt "$attempts" ]; then
            sleep "$delay"
        fi
        attempt=$((attempt + 1))
    done
    log_fatal "Failed to copy file to CTID ${ctid} after ${attempts} attempts."
}

# --- Config look-ups ----------------------------------------------------------------------------

_phoenix_need_jq() {
    if ! command -v jq >/dev/null 2>&1; then
        log_fatal "jq is not available in this guest; install jq (the base_setup feature does)."
    fi
}

# jq_get_value CTID QUERY: QUERY applied to .lxc_configs["CTID"] of $LXC_CONFIG_FILE; when that is
# empty or null, QUERY applied to the root of the file (where shared defaults such as
# nvidia_driver_version live). Prints the value (jq -r); returns 1 when it is empty or null.
jq_get_value() {
    local ctid="${1:-}" query="${2:-}" value="" rc=0
    _phoenix_need_jq
    log_debug "jq query for CTID ${ctid}: .lxc_configs[\"${ctid}\"] | ${query}"
    value=$(jq -r --arg ctid "$ctid" ".lxc_configs[\$ctid] | ${query}" "$LXC_CONFIG_FILE" 2>/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] || [ -z "$value" ] || [ "$value" = "null" ]; then
        log_debug "No value in the config of CTID ${ctid}; trying the root of the file: ${query}"
        rc=0
        value=$(jq -r "$query" "$LXC_CONFIG_FILE") || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        log_error "jq command failed for CTID ${ctid} with query '${query}'."
        return 1
    fi
    if [ -z "$value" ] || [ "$value" = "null" ]; then
        return 1
    fi
    printf '%s\n' "$value"
}

# jq_get_array CTID QUERY: like jq_get_value but only in the container's own config (no fallback);
# QUERY usually ends in [] so that each element comes on its own line.
jq_get_array() {
    local ctid="${1:-}" query="${2:-}" values="" rc=0
    _phoenix_need_jq
    values=$(jq -r --arg ctid "$ctid" ".lxc_configs[\$ctid] | ${query}" "$LXC_CONFIG_FILE") || rc=$?
    if [ "$rc" -ne 0 ]; then
        log_error "jq command failed for CTID ${ctid} with query '${query}'."
        return 1
    fi
    if [ -z "$values" ] || [ "$values" = "null" ]; then
        return 1
    fi
    printf '%s\n' "$values"
}

# _phoenix_vm_query VMID QUERY: QUERY applied to the .vms[] entry whose vmid is VMID.
_phoenix_vm_query() {
    local vmid="${1:-}" query="${2:-}" values="" rc=0
    _phoenix_need_jq
    case "$vmid" in
        '' | *[!0-9]*)
            log_error "Invalid VMID '${vmid}'."
            return 1
            ;;
    esac
    log_debug "jq query for VMID ${vmid}: .vms[] | select(.vmid == ${vmid}) | ${query}"
    values=$(jq -r --argjson vmid "$vmid" ".vms[] | select(.vmid == \$vmid) | ${query}" "$VM_CONFIG_FILE") || rc=$?
    if [ "$rc" -ne 0 ]; then
        log_error "jq command failed for VMID ${vmid} with query '${query}'."
        return 1
    fi
    if [ -z "$values" ] || [ "$values" = "null" ]; then
        return 1
    fi
    printf '%s\n' "$values"
}

# jq_get_vm_value VMID QUERY / jq_get_vm_array VMID QUERY: the same for $VM_CONFIG_FILE.
jq_get_vm_value() { _phoenix_vm_query "$@"; }

jq_get_vm_array() { _phoenix_vm_query "$@"; }

# _phoenix_file_value FILE QUERY: QUERY applied to FILE; fatal when the value is empty or null.
_phoenix_file_value() {
    local file="$1" query="$2" value=""
    _phoenix_need_jq
    value=$(jq -r "$query" "$file") || value=""
    if [ -z "$value" ] || [ "$value" = "null" ]; then
        log_fatal "Configuration value for query '${query}' not found or is null in ${file}."
    fi
    printf '%s\n' "$value"
}

# get_global_config_value QUERY: QUERY applied to $HYPERVISOR_CONFIG_FILE (fatal if empty/null).
get_global_config_value() { _phoenix_file_value "$HYPERVISOR_CONFIG_FILE" "${1:-}"; }

# get_vm_config_value QUERY: QUERY applied to $VM_CONFIG_FILE (fatal if empty/null).
get_vm_config_value() { _phoenix_file_value "$VM_CONFIG_FILE" "${1:-}"; }

# --- Small checks -------------------------------------------------------------------------------

# check_root: fatal unless running as root.
check_root() {
    if [ "$(id -u)" -ne 0 ]; then
        log_fatal "This script must be run as root"
    fi
}

# check_package NAME: whether the Debian package NAME is installed.
check_package() {
    local status
    status=$(dpkg-query -W -f='${Status}' "${1:-}" 2>/dev/null) || return 1
    [ "$status" = "install ok installed" ]
}

# is_command_available CTID NAME: whether NAME is on PATH or in a usual binary directory.
is_command_available() {
    local name="${2:-}" dir
    [ -n "$name" ] || return 1
    command -v "$name" >/dev/null 2>&1 && return 0
    for dir in /usr/bin /usr/sbin /bin /sbin /usr/local/bin /usr/local/sbin /opt/bin /usr/local/cuda/bin; do
        [ -f "${dir}/${name}" ] && return 0
    done
    return 1
}

# retry_command COMMAND [ATTEMPTS=3] [DELAY_S=5]: runs the string COMMAND with bash -c until it
# succeeds; after the first failure it is retried up to ATTEMPTS more times.
retry_command() {
    local cmd="${1:-}" attempts="${2:-3}" delay="${3:-5}" attempt=0
    until bash -c "$cmd"; do
        if [ "$attempt" -lt "$attempts" ]; then
            attempt=$((attempt + 1))
            log_warn "Command failed, retrying (${attempt}/${attempts}): ${cmd}"
            sleep "$delay"
        else
            log_error "Command failed after ${attempts} retries: ${cmd}"
            return 1
        fi
    done
    log_info "Command succeeded: ${cmd}"
}
