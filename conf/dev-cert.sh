#!/usr/bin/env bash
# Dev certificate recipe: a self-signed EC P-256 certificate for localhost and 127.0.0.1, valid for
# a year. Usage: conf/dev-cert.sh CERT.pem KEY.pem. Never use it outside a developer machine.
set -euo pipefail
cert=${1:?cert path} key=${2:?key path}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$key" -out "$cert" 2>/dev/null
chmod 600 "$key"
