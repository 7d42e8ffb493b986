#!/usr/bin/env bash
# Install the Debian packages the test infrastructure needs, when they are missing.
# openssl: certificates for the throwaway kube-apiserver (tools/testinfra/pki.py).
# Go 1.26+ is not a Debian package on bookworm (Debian ships 1.19); it must be on PATH already.
set -euo pipefail

missing=()
command -v openssl >/dev/null || missing+=(openssl)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ ${#missing[@]} -gt 0 ]; then
    echo "system-deps: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "system-deps: need root to install ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v go >/dev/null; then
    echo "system-deps: Go 1.26+ is required to build the test infrastructure; put it on PATH" >&2
    exit 1
fi
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "$go_minor" -lt 26 ]; then
    echo "system-deps: Go 1.26+ is required, found $(go env GOVERSION)" >&2
    exit 1
fi
