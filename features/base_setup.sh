#!/bin/sh
# Phoenix feature: base_setup
# Installs the tools every Phoenix guest gets, and sets the locale to en_US.UTF-8.
#
# Runs inside the guest as root. Inputs (environment):
#   PHOENIX_FEATURE, PHOENIX_CONFIG (the config keys it reads, as JSON: none, see phoenix-reads)
#   PHOENIX_MODE=apply (default) or check: check only reports whether everything is in place.
# Idempotent: installs only what is missing; a second run changes nothing.
# phoenix-reads:
# phoenix-check-mode: yes
set -eu

PACKAGES="curl wget vim htop jq git rsync s-tui gnupg locales"
mode="${PHOENIX_MODE:-apply}"
[ "${1:-}" = "--check" ] && mode=check

has() {
    case "$1" in
        locales) [ -x /usr/sbin/locale-gen ] ;;
        gnupg) command -v gpg >/dev/null 2>&1 ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

missing=""
for p in $PACKAGES; do
    has "$p" || missing="$missing $p"
done

locale_ok() {
    grep -q '^en_US.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null && grep -q '^LANG=en_US.UTF-8' /etc/default/locale 2>/dev/null
}

if [ "$mode" = check ]; then
    [ -z "$missing" ] && locale_ok && { echo "base_setup: in place"; exit 0; }
    echo "base_setup: missing:${missing:- (none)}; locale $(locale_ok && echo ok || echo unset)"
    exit 1
fi

if [ -n "$missing" ]; then
    echo "base_setup: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -q --no-install-recommends $missing
else
    echo "base_setup: all packages present"
fi

if ! locale_ok; then
    if [ -f /etc/locale.gen ]; then
        sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
        grep -q '^en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen
    else
        echo 'en_US.UTF-8 UTF-8' > /etc/locale.gen
    fi
    locale-gen
    update-locale LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8
fi
echo "base_setup: done"
