#!/usr/bin/env bash
# Generates the secrets a local or docker-compose cluster of affinity replicas needs:
#   OUT/ca.crt, OUT/ca.key                      the cluster CA (kept between runs)
#   OUT/<name>/tls.crt, tls.key, ca.crt         one peer certificate per replica (same layout as a
#                                               cert-manager Secret), SANs DNS:<name>, DNS:localhost,
#                                               IP:127.0.0.1, usable for TLS server and client auth
#   OUT/tokens/client-token, worker-token       bearer tokens for front-ends and workers
#   OUT/redis/password, OUT/redis/auth.conf     the Redis password and a redis.conf snippet using it
# Usage: deploy/gen-certs.sh [--force] OUT_DIR NAME [NAME...]
# Idempotent: existing files are kept unless --force is given (then everything is generated anew).
# OUT_DIR is created with mode 0700; files inside are 0644 so a container running as another uid can
# read its bind-mounted copy while other host users cannot reach the folder.
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then
    force=1
    shift
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--force] OUT_DIR NAME [NAME...]" >&2
    exit 2
fi
out="$1"
shift
days="${CERT_DAYS:-90}"

command -v openssl >/dev/null || { echo "gen-certs: openssl is required" >&2; exit 1; }

umask 077
mkdir -p "$out"
chmod 0700 "$out"
if [ "$force" -eq 1 ]; then
    rm -rf "${out:?}/ca.crt" "${out:?}/ca.key" "${out:?}/ca.srl" "${out:?}/tokens" "${out:?}/redis"
    for name in "$@"; do rm -rf "${out:?}/${name:?}"; done
fi

random_secret() {
    openssl rand -hex 32
}

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
        -subj "/O=zeebe-affinity/CN=zeebe-affinity peer CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    echo "gen-certs: created CA $out/ca.crt"
fi

for name in "$@"; do
    case "$name" in
        *[!A-Za-z0-9.-]* | "") echo "gen-certs: invalid replica name '$name'" >&2; exit 2 ;;
    esac
    dir="$out/$name"
    if [ -s "$dir/tls.crt" ] && [ -s "$dir/tls.key" ] && openssl verify -CAfile "$out/ca.crt" "$dir/tls.crt" >/dev/null 2>&1; then
        continue
    fi
    mkdir -p "$dir"
    ext="$(mktemp)"
    cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1
EXT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/tls.key" -out "$dir/tls.csr" -subj "/O=zeebe-affinity/CN=${name}" 2>/dev/null
    openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
        -out "$dir/tls.crt" -days "$days" -extfile "$ext" 2>/dev/null
    rm -f "$dir/tls.csr" "$ext"
    echo "gen-certs: issued $dir/tls.crt"
done

mkdir -p "$out/tokens" "$out/redis"
[ -s "$out/tokens/client-token" ] || random_secret >"$out/tokens/client-token"
[ -s "$out/tokens/worker-token" ] || random_secret >"$out/tokens/worker-token"
[ -s "$out/redis/password" ] || random_secret >"$out/redis/password"
printf 'requirepass %s\n' "$(cat "$out/redis/password")" >"$out/redis/auth.conf"

# Every replica directory carries the CA it trusts, as a cert-manager Secret does.
for name in "$@"; do cp "$out/ca.crt" "$out/$name/ca.crt"; done

# Readable inside containers that run as a different uid; the 0700 folder keeps other host users out.
find "$out" -type d -exec chmod 0755 {} +
chmod 0700 "$out"
find "$out" -type f ! -name ca.key ! -name ca.srl -exec chmod 0644 {} +
