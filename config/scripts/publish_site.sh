#!/bin/sh
# Application script for 950: runs inside the guest after its features.
# Publishes a page naming the guest; idempotent (rewrites the same file).
# phoenix-reads: id name
set -eu
mkdir -p /srv/www
printf 'phoenix guest %s (%s)\n' "${PHOENIX_CTID:-?}" "${PHOENIX_GUEST_NAME:-?}" > /srv/www/index.html
