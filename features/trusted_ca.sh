#!/bin/bash
# Phoenix feature: trusted_ca
# Adds the fleet's root CA to the guest's trust store. The certificate comes from
# /var/lib/phoenix/ca/*.crt (bind-mount or push it there) and, when the container sets
# bootstrap_ca_url, from <bootstrap_ca_url>/roots.pem (step-ca serves its roots there).
# Idempotent: update-ca-certificates runs only when a certificate changed.
# phoenix-reads: bootstrap_ca_url
# phoenix-check-mode: yes
set -euo pipefail
mode="${PHOENIX_MODE:-apply}"; [ "${1:-}" = "--check" ] && mode=check
src=/var/lib/phoenix/ca
dst=/usr/local/share/ca-certificates/phoenix

if [ "$mode" = check ]; then
    shopt -s nullglob
    certs=("$src"/*.crt)
    [ ${#certs[@]} -gt 0 ] || { echo "trusted_ca: no certificate in $src"; exit 1; }
    for c in "${certs[@]}"; do cmp -s "$c" "$dst/$(basename "$c")" || { echo "trusted_ca: $(basename "$c") not installed"; exit 1; }; done
    echo "trusted_ca: in place"; exit 0
fi

mkdir -p "$src" "$dst"
if [ -n "${PHOENIX_BOOTSTRAP_CA_URL:-}" ]; then
    tmp=$(mktemp)
    # The root is what we are about to trust, so it cannot be verified by itself: fetch it over
    # the network the operator configured and keep it only if it parses as a certificate.
    curl -fsSk --max-time 30 "${PHOENIX_BOOTSTRAP_CA_URL%/}/roots.pem" -o "$tmp"
    openssl x509 -in "$tmp" -noout
    mv "$tmp" "$src/phoenix_root_ca.crt"
fi
shopt -s nullglob
certs=("$src"/*.crt)
[ ${#certs[@]} -gt 0 ] || { echo "trusted_ca: no certificate in $src and no bootstrap_ca_url" >&2; exit 1; }
changed=0
for c in "${certs[@]}"; do
    if ! cmp -s "$c" "$dst/$(basename "$c")"; then install -m 0644 "$c" "$dst/"; changed=1; fi
done
if [ $changed = 1 ]; then update-ca-certificates; fi
echo "trusted_ca: ${#certs[@]} certificate(s) trusted"
