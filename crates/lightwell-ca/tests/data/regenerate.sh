#!/bin/sh
# Regenerates the CSR fixtures that need OpenSSL (key types and signature
# algorithms Lightwell refuses, so it cannot make them itself).
# Run from this directory: ./regenerate.sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl ecparam -name secp521r1 -genkey -noout -out "$tmp/p521.key"
openssl req -new -key "$tmp/p521.key" -subj /CN=node1.corp.example -out p521.csr.pem

openssl genrsa -out "$tmp/rsa1024.key" 1024
openssl req -new -key "$tmp/rsa1024.key" -subj /CN=node1.corp.example -out rsa1024.csr.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/p256.key"
openssl req -new -sha1 -key "$tmp/p256.key" -subj /CN=node1.corp.example -out p256-sha1.csr.pem

openssl genpkey -algorithm ed448 -out "$tmp/ed448.key"
openssl req -new -key "$tmp/ed448.key" -subj /CN=node1.corp.example -out ed448.csr.pem
