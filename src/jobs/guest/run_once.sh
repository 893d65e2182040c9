#!/bin/sh
# phoenix-run: runs one guest script exactly once across crashes of the Phoenix run that drives it.
#
#   phoenix-run <dir> <token> <timeout_s> <marker> <digest> -- <script> [args...]
#
# <dir> holds the step's `lock`, `status` (token, pid, started, exit, finished) and `log`. The
# instance in flight holds `lock` for its whole life, so:
# - an instance in flight (whatever its token) is waited for, its log streamed; never a second one
#   beside it;
# - a finished instance with this <token> is not run again: its log and result are given back
#   (the run that started it died before it could record the result);
# - otherwise a new instance starts, detached (its own session) so that it outlives a killed
#   `phoenix run`, `lxc-attach` or SSH connection.
# The script runs in a process group of its own; after <timeout_s> the whole group gets TERM, then
# KILL. On success the instance itself writes <digest> to <marker>. The last line of the output is
# `@@phoenix-run exit=<code> attached=<0|1> started=<epoch>`; a run that does not see it (the
# connection died) keeps <token> and re-attaches next time.
set -u
for tool in flock setsid tail; do
    command -v "$tool" >/dev/null 2>&1 || { echo "phoenix-run: the guest has no $tool"; exit 125; }
done
dir=$1 token=$2 timeout=$3 marker=$4 digest=$5
shift 5
[ "${1:-}" = "--" ] && shift
status="$dir/status" log="$dir/log"
mkdir -p "$dir"
field() { sed -n "s/^$1=//p" "$status" 2>/dev/null | tail -n 1; }

# Waits for the instance in flight (streaming its log), then holds the lock.
attach() {
    i=0
    while [ -z "$(field pid)" ] && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    pid=$(field pid) streamer=
    if [ -n "$pid" ]; then
        tail -n +1 -f --pid="$pid" "$log" 2>/dev/null &
        streamer=$!
    fi
    flock 9 || exit 125
    # Where `tail` could not follow the instance (busybox's has no --pid), the log comes whole.
    if [ -z "$streamer" ] || ! wait "$streamer"; then
        cat "$log"
    fi
}

report() {
    code=$(field exit)
    printf '\n@@phoenix-run exit=%s attached=%s started=%s\n' "${code:-125}" "$1" "$(field started)"
    exit "${code:-125}"
}

exec 9>>"$dir/lock"
attached=0
flock -n 9
case $? in
    0) ;;
    1) attach; attached=1 ;;
    *) echo "phoenix-run: cannot lock $dir/lock"; exit 125 ;;
esac
# The lock is ours: nothing is in flight.
if [ "$(field token)" = "$token" ] && [ -n "$(field exit)" ]; then
    [ "$attached" = 1 ] || cat "$log"
    report 1
fi
# Started under this token and gone without a result: the guest restarted under it, or the
# instance was killed. Only then does a script run a second time.
[ "$(field token)" = "$token" ] && [ -n "$(field pid)" ] &&
    echo "phoenix-run: the instance started at $(field started) ended without a result (the guest restarted?); running it again"
[ "$attached" = 1 ] && [ "$(field token)" != "$token" ] && echo "phoenix-run: waited for an earlier instance ($(field token)); starting this one"
: >"$log"
printf 'token=%s\nstarted=%s\n' "$token" "$(date +%s)" >"$status.tmp" && mv "$status.tmp" "$status"
export PHOENIX_RUN_DIR="$dir"
# The instance: its own session (it outlives whoever started it); it keeps fd 9, and so the lock,
# until its result is written; the script itself does not get fd 9.
# shellcheck disable=SC2016 # the instance expands its own arguments
setsid sh -c '
    dir=$1 timeout=$2 marker=$3 digest=$4
    shift 4
    echo "pid=$$" >>"$dir/status"
    setsid "$@" 9>&- </dev/null >>"$dir/log" 2>&1 &
    script=$!
    (
        n=0
        while kill -0 "$script" 2>/dev/null; do
            sleep 1
            n=$((n + 1))
            if [ "$timeout" -gt 0 ] && [ "$n" -ge "$timeout" ]; then
                echo timeout >"$dir/timed_out"
                kill -TERM "-$script" 2>/dev/null
                sleep 5
                kill -KILL "-$script" 2>/dev/null
                break
            fi
        done
    ) 9>&- &
    watchdog=$!
    wait "$script"
    code=$?
    wait "$watchdog"
    if [ -e "$dir/timed_out" ]; then
        rm -f "$dir/timed_out"
        echo "phoenix-run: timed out after ${timeout}s; killed its process group" >>"$dir/log"
        code=124
    fi
    if [ "$code" = 0 ] && [ -n "$marker" ]; then
        mkdir -p "$(dirname "$marker")" && printf "%s\n" "$digest" >"$marker.tmp" && mv "$marker.tmp" "$marker" || code=126
    fi
    printf "exit=%s\nfinished=%s\n" "$code" "$(date +%s)" >>"$dir/status"
' phoenix-instance "$dir" "$timeout" "$marker" "$digest" "$@" </dev/null >/dev/null 2>&1 &
# Our copy of the lock goes; a fresh one waits for the instance's.
exec 9>&-
exec 9>>"$dir/lock"
attach
report 0
