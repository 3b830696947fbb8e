#!/usr/bin/env bash
# Runs Lightwell's whole test suite: unit, conformance and end-to-end tests
# against the real binaries. As root it first installs, idempotently, the
# system packages the tests drive (openssl, curl, PostgreSQL, OpenLDAP's
# clients, etcd, kubectl, slapd for the LDAP benchmark's smoke run, cfssl for
# the issuance benchmark's smoke run, nginx for the agent's crl.pem recipe),
# pkilint, the Python ldap3 client, py-spiffe and Authlib.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(openssl curl ca-certificates postgresql ldap-utils slapd golang-cfssl etcd-server etcd-client nginx-light)
command -v python3 >/dev/null || packages+=(python3 python3-pip)
# Debian's kubectl; a kubectl already installed from elsewhere does as well.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing system packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
fi

# pkilint (PyPI) checks issued certificates and CRLs against RFC 5280.
if ! command -v lint_pkix_cert >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing pkilint"
    python3 -m pip install --quiet pkilint==0.13.3 || python3 -m pip install --quiet --break-system-packages pkilint==0.13.3
  else
    echo "pkilint is missing (pip install pkilint) and not root to install it" >&2
    exit 1
  fi
fi

# The LDAP tests also drive the Python ldap3 client.
if ! python3 -c 'import ldap3' 2>/dev/null; then
  echo "installing: python ldap3"
  python3 -m pip install -q ldap3 2>/dev/null || python3 -m pip install -q --break-system-packages ldap3
fi

# The Workload API tests drive py-spiffe (PyPI `spiffe`), a SPIFFE client nobody here wrote.
if ! python3 -c 'import spiffe' 2>/dev/null; then
  echo "installing: python spiffe (py-spiffe)"
  python3 -m pip install -q spiffe==0.3.2 2>/dev/null || python3 -m pip install -q --break-system-packages spiffe==0.3.2
fi

# The OpenID provider's tests drive Authlib's OAuth 2.0 client (over requests).
if ! python3 -c 'import authlib, requests' 2>/dev/null; then
  echo "installing: python authlib, requests"
  python3 -m pip install -q authlib==1.6.5 requests 2>/dev/null || python3 -m pip install -q --break-system-packages authlib==1.6.5 requests
fi

# Build every binary once; the end-to-end tests run the real lightwelld and lightwell.
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  # Per-test deadlines come from .config/nextest.toml, which nextest reads here.
  cargo nextest run --workspace --locked --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
