#!/usr/bin/env bash
# A self-signed certificate for trying the stack out (use real certificates in production).
set -euo pipefail
dir="${1:-$(dirname "$0")/certs}"
name="${2:-localhost}"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$name" -addext "subjectAltName=DNS:$name,IP:127.0.0.1" \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 600 "$dir/privkey.pem"
echo "certificate in $dir"
