#!/bin/sh
# A cluster's own CA and a certificate per server, as the zoo's members (and the third-party
# target) make them for each run:
#
#   make-certs.sh DIR CA_NAME NAME=IP ...
#
# writes DIR/ca.pem, DIR/ca.key, and for each NAME its NAME.crt, NAME.key and NAME.pem
# (certificate and key in one file, for the servers that want that). The extensions are those
# strict verification wants (Python 3.13 verifies with VERIFY_X509_STRICT): the CA's key
# usage, and the leaf's authority key id, usage and purpose; the leaf names its IP and
# localhost.
set -eu
dir=$1 ca=$2
shift 2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$ca" -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
for server in "$@"; do
  name=${server%%=*} ip=${server#*=}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:$ip,DNS:localhost" "authorityKeyIdentifier=keyid,issuer" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  cat "$dir/$name.crt" "$dir/$name.key" >"$dir/$name.pem"
done
