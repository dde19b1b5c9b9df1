#!/usr/bin/env python3
"""Asserts the deployment properties of zeebe-affinity that must not silently disappear.

Subcommands (each exits 1 and lists the problems when a property is missing):
  k8s FILE...         rendered kustomize output (kubectl kustomize k8s/overlays/<name>): probes,
                      preStop and grace period, rolling update, PDB, HPA, Services, NetworkPolicy,
                      securityContext, secrets as files, downward API, cert-manager and ServiceMonitor
                      resources against a strict schema of the fields this project uses.
  split IN OUT        writes the built-in kinds of IN to OUT for kubernetes-validate and prints which
                      custom resources were left out (they are checked by `k8s` instead).
  compose FILE        deploy/docker-compose.yml
  dockerfile FILE     deploy/Dockerfile
  self-test PROD DEV COMPOSE DOCKERFILE [DEV-SENTINEL [DEV-CLUSTER]]
                      breaks known-good inputs on purpose and requires every break to be caught.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

REPLICA_LABELS = {"app.kubernetes.io/name": "affinity-server", "app.kubernetes.io/component": "replica"}
WORKER_LABELS = {"app.kubernetes.io/name": "affinity-worker", "app.kubernetes.io/component": "worker"}
CLIENT_PORT, METRICS_PORT, PEER_PORT = 8080, 9090, 9443
DEFAULT_DRAIN_TIMEOUT = 25.0
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}


# ---- helpers ---------------------------------------------------------------------------------------

def load_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def parse_duration(text: str) -> float:
    """Seconds of a duration like `500ms`, `25s`, `5m`, `1h`, or a bare number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def selects(selector: dict | None, labels: dict) -> bool:
    """True when a label selector (or a plain label map, as in a Service) selects pods with `labels`."""
    if not selector:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        if selector.get("matchExpressions"):
            return False
        wanted = selector.get("matchLabels") or {}
    else:
        wanted = selector
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def find(docs: list[dict], kind: str, name: str | None = None, labels: dict | None = None) -> list[dict]:
    found = []
    for doc in docs:
        if doc.get("kind") != kind:
            continue
        if name is not None and doc.get("metadata", {}).get("name") != name:
            continue
        if labels is not None:
            template_labels = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
            if not all(template_labels.get(k) == v for k, v in labels.items()):
                continue
        found.append(doc)
    return found


def port_numbers(rule: dict, container_ports: dict[str, int]) -> set[int]:
    numbers = set()
    for port in rule.get("ports", []) or []:
        value = port.get("port")
        numbers.add(container_ports.get(value, value) if isinstance(value, str) else value)
    return numbers


def configmap_values(docs: list[dict], container: dict) -> dict[str, str]:
    """The environment a container sees from its envFrom ConfigMaps and its literal env values."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []) or []:
        ref = source.get("configMapRef")
        if ref:
            for cm in find(docs, "ConfigMap", ref["name"]):
                values.update(cm.get("data", {}) or {})
    for env in container.get("env", []) or []:
        if "value" in env:
            values[env["name"]] = env["value"]
    return values


# ---- Kubernetes: workload hardening -------------------------------------------------------------------

def check_pod_security(where: str, pod: dict) -> list[str]:
    problems = []
    pod_ctx = pod.get("securityContext", {}) or {}
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{where}: uses a host namespace")
    if (pod_ctx.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod securityContext.seccompProfile.type must be RuntimeDefault")
    for container in (pod.get("initContainers") or []) + pod.get("containers", []):
        c_where = f"{where} container {container.get('name')}"
        ctx = container.get("securityContext", {}) or {}
        non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if non_root is not True:
            problems.append(f"{c_where}: runAsNonRoot must be true")
        if user == 0:
            problems.append(f"{c_where}: runAsUser must not be 0")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c_where}: readOnlyRootFilesystem must be true")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c_where}: allowPrivilegeEscalation must be false")
        if ctx.get("privileged"):
            problems.append(f"{c_where}: must not be privileged")
        caps = ctx.get("capabilities", {}) or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{c_where}: capabilities must drop ALL")
        if caps.get("add"):
            problems.append(f"{c_where}: capabilities must not add {caps['add']}")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            problems.append(f"{c_where}: seccompProfile must be RuntimeDefault")
    return problems


def check_secret_files(where: str, pod: dict, container: dict) -> list[str]:
    """Secrets reach the process as mounted files: no secret env vars, *_FILE paths are mounted."""
    problems = []
    for env in container.get("env", []) or []:
        if (env.get("valueFrom") or {}).get("secretKeyRef"):
            problems.append(f"{where}: env {env['name']} comes from a Secret; mount it as a file instead")
    for source in container.get("envFrom", []) or []:
        if source.get("secretRef"):
            problems.append(f"{where}: envFrom a Secret; mount it as a file instead")
    secret_volumes = {v["name"] for v in pod.get("volumes", []) or [] if "secret" in v or "projected" in v}
    mounts = container.get("volumeMounts", []) or []
    secret_mounts = [m for m in mounts if m["name"] in secret_volumes]
    for mount in secret_mounts:
        if mount.get("subPath") or mount.get("subPathExpr"):
            problems.append(f"{where}: Secret volume {mount['name']} mounted with subPath (it would never see a rotation)")
    for env in container.get("env", []) or []:
        name, value = env["name"], env.get("value")
        if not (name.endswith("_FILE") or name.startswith("AFFINITY_PEER_TLS_")) or value is None:
            continue
        if not any(value.startswith(m["mountPath"].rstrip("/") + "/") for m in secret_mounts):
            problems.append(f"{where}: {name}={value} is not inside a mounted Secret")
    return problems


def downward_api_names(container: dict, field_path: str) -> set[str]:
    return {
        env["name"]
        for env in container.get("env", []) or []
        if ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == field_path
    }


def env_from_field(container: dict, variable: str, field_path: str) -> bool:
    """True when `variable` is the downward-API field itself or built from `$(VAR)` of one."""
    sources = downward_api_names(container, field_path)
    if variable in sources:
        return True
    for env in container.get("env", []) or []:
        if env["name"] == variable and "value" in env:
            return any(f"$({s})" in env["value"] for s in sources)
    return False


REDIS_URL_SCHEMES = (
    "redis://", "rediss://", "redis-sentinel://", "rediss-sentinel://", "redis-cluster://", "rediss-cluster://"
)
SENTINEL_URL_SCHEMES = ("redis-sentinel://", "rediss-sentinel://")
CLUSTER_URL_SCHEMES = ("redis-cluster://", "rediss-cluster://")
CLUSTER_NODE_LABELS = {"app.kubernetes.io/name": "affinity-redis-cluster", "app.kubernetes.io/component": "node"}
CLUSTER_CREATE_LABELS = {"app.kubernetes.io/name": "affinity-redis-cluster", "app.kubernetes.io/component": "create"}


def check_replica_deployment(docs: list[dict]) -> list[str]:
    deployments = find(docs, "Deployment", labels=REPLICA_LABELS)
    if len(deployments) != 1:
        return [f"expected one Deployment of the replicas (labels {REPLICA_LABELS}), found {len(deployments)}"]
    deployment = deployments[0]
    where = f"Deployment {deployment['metadata']['name']}"
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    problems = check_pod_security(where, pod)

    strategy = spec.get("strategy", {}) or {}
    rolling = strategy.get("rollingUpdate", {}) or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or str(rolling.get("maxUnavailable")) not in ("0", "0%"):
        problems.append(f"{where}: rolling update must have maxUnavailable 0")
    spread_keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints", []) or []}
    if not spread_keys & {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}:
        problems.append(f"{where}: needs topologySpreadConstraints over nodes or zones")

    servers = [c for c in pod["containers"] if (c.get("command") or [""])[0].endswith("affinity-server")]
    if len(servers) != 1:
        return problems + [f"{where}: expected one container running affinity-server"]
    container = servers[0]
    c_where = f"{where} container {container['name']}"
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", []) or []}
    problems += check_secret_files(c_where, pod, container)

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe not in container:
            problems.append(f"{c_where}: {probe} is missing")
    liveness = container.get("livenessProbe", {}) or {}
    live_path = (liveness.get("httpGet") or {}).get("path")
    if liveness and live_path != "/health/live":
        problems.append(f"{c_where}: livenessProbe must be GET /health/live (never Redis-dependent), is {live_path or liveness}")
    ready_path = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    if container.get("readinessProbe") and ready_path != "/health/ready":
        problems.append(f"{c_where}: readinessProbe must be GET /health/ready, is {ready_path}")

    pre_stop = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if not pre_stop:
        problems.append(f"{c_where}: lifecycle.preStop is missing")
    pre_stop_seconds = 0.0
    if "sleep" in pre_stop:
        pre_stop_seconds = float(pre_stop["sleep"].get("seconds", 0))
    elif "exec" in pre_stop:
        command = pre_stop["exec"].get("command", [])
        if command and command[0].endswith("sleep") and len(command) > 1:
            pre_stop_seconds = parse_duration(command[1])
    environment = configmap_values(docs, container)
    drain = parse_duration(environment.get("AFFINITY_DRAIN_TIMEOUT", f"{DEFAULT_DRAIN_TIMEOUT}s"))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_stop_seconds + drain:
        problems.append(
            f"{where}: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop_seconds:g}s + drain timeout {drain:g}s"
        )

    if not env_from_field(container, "AFFINITY_REPLICA_ID", "metadata.name"):
        problems.append(f"{c_where}: AFFINITY_REPLICA_ID must come from the pod name (downward API)")
    if not env_from_field(container, "AFFINITY_PEER_ADVERTISE_ADDRESS", "status.podIP"):
        problems.append(f"{c_where}: AFFINITY_PEER_ADVERTISE_ADDRESS must come from the pod IP (downward API)")
    for variable in ("AFFINITY_PEER_TLS_CERT", "AFFINITY_PEER_TLS_KEY", "AFFINITY_PEER_TLS_CA", "AFFINITY_REDIS_URL"):
        if variable not in environment:
            problems.append(f"{c_where}: {variable} is not set")
    for number, name in ((CLIENT_PORT, "client"), (METRICS_PORT, "metrics"), (PEER_PORT, "peer")):
        if number not in ports.values():
            problems.append(f"{c_where}: the {name} port {number} is not declared")
    if str(environment.get("AFFINITY_REDIS_URL", "")).startswith(REDIS_URL_SCHEMES) is False:
        problems.append(
            f"{c_where}: AFFINITY_REDIS_URL must be a redis://, rediss://, redis-sentinel://, rediss-sentinel://, "
            "redis-cluster:// or rediss-cluster:// URL"
        )
    if str(environment.get("AFFINITY_REDIS_URL", "")).startswith(SENTINEL_URL_SCHEMES) and "#" not in str(
        environment.get("AFFINITY_REDIS_URL")
    ):
        problems.append(f"{c_where}: a redis-sentinel:// AFFINITY_REDIS_URL needs the master name after #")
    url = str(environment.get("AFFINITY_REDIS_URL", ""))
    if url.startswith(CLUSTER_URL_SCHEMES):
        nodes = url.split("://", 1)[1].split("@")[-1]
        if "#" in nodes or nodes.partition("/")[2] not in ("", "0"):
            problems.append(f"{c_where}: a redis-cluster:// AFFINITY_REDIS_URL names seed nodes only (database 0, no #)")
    return problems


def check_redis_cluster(docs: list[dict]) -> list[str]:
    """The in-cluster Redis Cluster (components/redis-cluster), when the render has one: three masters with a
    replica each need six nodes, and a Job that joins them."""
    nodes = find(docs, "StatefulSet", labels=CLUSTER_NODE_LABELS)
    if not nodes:
        return []
    problems = []
    for node in nodes:
        if node["spec"].get("replicas", 1) < 6:
            problems.append(
                f"StatefulSet {node['metadata']['name']}: a Redis Cluster of three masters with one replica each "
                f"needs 6 nodes, has {node['spec'].get('replicas', 1)}"
            )
    if not find(docs, "Job", labels=CLUSTER_CREATE_LABELS):
        problems.append("no Job creates the Redis Cluster (redis-cli --cluster create)")
    return problems


def check_worker_deployment(docs: list[dict]) -> list[str]:
    deployments = find(docs, "Deployment", labels=WORKER_LABELS)
    if len(deployments) != 1:
        return [f"expected one Deployment of the affinity worker (labels {WORKER_LABELS}), found {len(deployments)}"]
    deployment = deployments[0]
    where = f"Deployment {deployment['metadata']['name']}"
    pod = deployment["spec"]["template"]["spec"]
    problems = check_pod_security(where, pod)
    containers = [c for c in pod["containers"] if (c.get("command") or [""])[0].endswith("affinity-worker")]
    if len(containers) != 1:
        return problems + [f"{where}: expected one container running affinity-worker"]
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in containers[0]:
            problems.append(f"{where}: {probe} is missing")
    return problems


# ---- Kubernetes: availability, Services, network -----------------------------------------------------

def check_availability(docs: list[dict]) -> list[str]:
    problems = []
    if not any(selects(p["spec"].get("selector"), REPLICA_LABELS) for p in find(docs, "PodDisruptionBudget")):
        problems.append("no PodDisruptionBudget selects the replicas")
    replica_deployments = find(docs, "Deployment", labels=REPLICA_LABELS)
    names = {d["metadata"]["name"] for d in replica_deployments}
    hpas = [
        h for h in find(docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"].get("kind") == "Deployment" and h["spec"]["scaleTargetRef"].get("name") in names
    ]
    if not hpas:
        problems.append("no HorizontalPodAutoscaler scales the replica Deployment")
    for hpa in hpas:
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append(f"HorizontalPodAutoscaler {hpa['metadata']['name']}: minReplicas must be at least 2")
    return problems


def check_services(docs: list[dict]) -> list[str]:
    problems = []
    services = [s for s in find(docs, "Service") if selects(s["spec"].get("selector"), REPLICA_LABELS)]
    client = [s for s in services if s["spec"].get("clusterIP") != "None" and any(p["port"] == CLIENT_PORT for p in s["spec"]["ports"])]
    peer = [s for s in services if s["spec"].get("clusterIP") == "None" and any(p["port"] == PEER_PORT for p in s["spec"]["ports"])]
    if not client:
        problems.append(f"no ClusterIP Service for clients on port {CLIENT_PORT} selects the replicas")
    if not peer:
        problems.append(f"no headless Service for peers on port {PEER_PORT} selects the replicas")
    return problems


def peer_selector_only(rule: dict) -> bool:
    """True when every source of an ingress rule is a podSelector for the replicas, in-namespace."""
    sources = rule.get("from") or []
    return bool(sources) and all(
        set(s) == {"podSelector"} and selects(s["podSelector"], REPLICA_LABELS) for s in sources
    )


def check_network_policy(docs: list[dict]) -> list[str]:
    policies = [p for p in find(docs, "NetworkPolicy") if selects(p["spec"].get("podSelector"), REPLICA_LABELS)]
    if not policies:
        return ["no NetworkPolicy selects the replicas"]
    problems = []
    deployment = (find(docs, "Deployment", labels=REPLICA_LABELS) or [{}])[0]
    container_ports: dict[str, int] = {}
    for c in deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        container_ports.update({p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p})
    for policy in policies:
        where = f"NetworkPolicy {policy['metadata']['name']}"
        spec = policy["spec"]
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            problems.append(f"{where}: policyTypes must be Ingress and Egress")
        ingress = spec.get("ingress", []) or []
        for rule in ingress:
            opened = port_numbers(rule, container_ports)
            if not opened:
                problems.append(f"{where}: an ingress rule opens every port")
            if PEER_PORT in opened and not peer_selector_only(rule):
                problems.append(f"{where}: the peer port {PEER_PORT} must be open only to the replicas")
            if METRICS_PORT in opened:
                sources = rule.get("from") or []
                if not sources or not all("namespaceSelector" in s and s["namespaceSelector"] for s in sources):
                    problems.append(f"{where}: the metrics port {METRICS_PORT} must be open only to a monitoring namespace")
        open_ports = set().union(*(port_numbers(r, container_ports) for r in ingress)) if ingress else set()
        for number, name in ((CLIENT_PORT, "client"), (PEER_PORT, "peer"), (METRICS_PORT, "metrics")):
            if number not in open_ports:
                problems.append(f"{where}: no ingress rule for the {name} port {number}")
        egress = spec.get("egress", []) or []
        egress_ports = {(p.get("port"), p.get("protocol", "TCP")) for r in egress for p in (r.get("ports") or [])}
        if (53, "UDP") not in egress_ports:
            problems.append(f"{where}: no DNS egress (UDP 53)")
        if not egress_ports & {(6379, "TCP"), (6380, "TCP")}:
            problems.append(f"{where}: no Redis egress (6379/6380)")
        servers = [c for c in deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
                   if (c.get("command") or [""])[0].endswith("affinity-server")]
        redis_url = str(configmap_values(docs, servers[0]).get("AFFINITY_REDIS_URL", "")) if servers else ""
        if redis_url.startswith(SENTINEL_URL_SCHEMES) and (26379, "TCP") not in egress_ports:
            problems.append(f"{where}: no egress to the Redis sentinels (26379) for a redis-sentinel:// URL")
        if not any(
            PEER_PORT in port_numbers(r, {}) and any(selects(t.get("podSelector"), REPLICA_LABELS) for t in r.get("to") or [])
            for r in egress
        ):
            problems.append(f"{where}: no egress to the other replicas' peer port")
    return problems


# ---- Kubernetes: custom resources (cert-manager, Prometheus Operator) -------------------------------

_ISSUER_REF = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {"name": {"type": "string"}, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": {"type": "string"}},
}
_METADATA = {"type": "object", "required": ["name"]}
CUSTOM_SCHEMAS = {
    "Certificate": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "additionalProperties": False, "required": ["secretName", "issuerRef"],
            "properties": {
                "secretName": {"type": "string"}, "commonName": {"type": "string"}, "isCA": {"type": "boolean"},
                "dnsNames": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "ipAddresses": {"type": "array", "items": {"type": "string"}},
                "duration": {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$"},
                "renewBefore": {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$"},
                "privateKey": {"type": "object", "additionalProperties": False, "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                    "encoding": {"enum": ["PKCS1", "PKCS8"]}, "rotationPolicy": {"enum": ["Never", "Always"]}}},
                "usages": {"type": "array", "items": {"enum": [
                    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
                    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"]}},
                "issuerRef": _ISSUER_REF,
            }}},
    },
    "Issuer": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
            "properties": {
                "selfSigned": {"type": "object", "additionalProperties": False, "properties": {}},
                "ca": {"type": "object", "additionalProperties": False, "required": ["secretName"],
                       "properties": {"secretName": {"type": "string"}}},
            }}},
    },
    "ServiceMonitor": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "additionalProperties": False, "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "namespaceSelector": {"type": "object"},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["port"], "properties": {
                        "port": {"type": "string"}, "path": {"type": "string"},
                        "interval": {"type": "string"}, "scrapeTimeout": {"type": "string"},
                        "scheme": {"enum": ["http", "https"]}}}},
            }}},
    },
}
CUSTOM_SCHEMAS["ClusterIssuer"] = CUSTOM_SCHEMAS["Issuer"]


def check_custom_resources(docs: list[dict]) -> list[str]:
    problems = []
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) not in CUSTOM_KINDS:
            continue
        where = f"{doc['kind']} {doc.get('metadata', {}).get('name')}"
        for error in jsonschema.Draft202012Validator(CUSTOM_SCHEMAS[doc["kind"]]).iter_errors(doc):
            path = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: {path}: {error.message}")
    issuers = {(d["kind"], d["metadata"]["name"]) for d in docs if d.get("kind") in ("Issuer", "ClusterIssuer")}
    deployment = (find(docs, "Deployment", labels=REPLICA_LABELS) or [{}])[0]
    pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
    mounted_secrets = {v["secret"]["secretName"] for v in pod.get("volumes", []) or [] if "secret" in v}
    peer_certificates = [c for c in find(docs, "Certificate") if c.get("spec", {}).get("secretName") in mounted_secrets]
    for cert in find(docs, "Certificate"):
        ref = cert.get("spec", {}).get("issuerRef", {})
        if ref.get("kind", "Issuer") == "Issuer" and ("Issuer", ref.get("name")) not in issuers:
            problems.append(f"Certificate {cert['metadata']['name']}: issuer {ref.get('name')} is not in the render")
    for cert in peer_certificates:
        usages = set(cert["spec"].get("usages") or [])
        if not {"server auth", "client auth"} <= usages:
            problems.append(f"Certificate {cert['metadata']['name']}: peer certificate needs usages server auth and client auth")
    if find(docs, "Certificate") and not peer_certificates:
        problems.append("no Certificate issues a Secret that the replicas mount")
    for monitor in find(docs, "ServiceMonitor"):
        selector = monitor.get("spec", {}).get("selector", {})
        endpoint_ports = {e.get("port") for e in monitor.get("spec", {}).get("endpoints", [])}
        targets = [
            s for s in find(docs, "Service")
            if selects(selector, s["metadata"].get("labels", {}) or {})
            and endpoint_ports & {p.get("name") for p in s["spec"]["ports"]}
        ]
        if not any(selects(s["spec"].get("selector"), REPLICA_LABELS) for s in targets):
            problems.append(f"ServiceMonitor {monitor['metadata']['name']}: selects no Service with a metrics port of the replicas")
    return problems


def check_kubernetes(docs: list[dict]) -> list[str]:
    problems = (
        check_replica_deployment(docs) + check_worker_deployment(docs) + check_availability(docs)
        + check_services(docs) + check_network_policy(docs) + check_custom_resources(docs)
        + check_redis_cluster(docs)
    )
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
        for workload in find(docs, kind):
            template = workload["spec"].get("jobTemplate", {}).get("spec", workload["spec"])["template"]
            if find([workload], kind, labels=REPLICA_LABELS) or find([workload], kind, labels=WORKER_LABELS):
                continue  # already checked above
            problems += check_pod_security(f"{kind} {workload['metadata']['name']}", template["spec"])
            for container in template["spec"]["containers"]:
                if container.get("image", "").endswith(":latest") or ":" not in container.get("image", ""):
                    problems.append(f"{kind} {workload['metadata']['name']}: image {container.get('image')} has no pinned tag")
    return problems


# ---- docker compose and Dockerfile --------------------------------------------------------------------

def check_compose(compose: dict, compose_dir: Path) -> list[str]:
    problems = []
    services = compose.get("services", {}) or {}

    def command_of(service: dict) -> str:
        command = service.get("command") or [""]
        return (command.split() if isinstance(command, str) else command)[0]

    replicas = {n: s for n, s in services.items() if command_of(s) == "affinity-server"}
    if len(replicas) < 3:
        problems.append(f"compose: expected three affinity-server replicas, found {len(replicas)}")
    ids, certs = set(), set()
    for name, service in replicas.items():
        env = service.get("environment", {}) or {}
        ids.add(env.get("AFFINITY_REPLICA_ID"))
        if not str(env.get("AFFINITY_REDIS_URL", "")).startswith(("redis://", "rediss://")):
            problems.append(f"compose: {name} has no Redis URL")
        for variable in ("AFFINITY_PEER_ADVERTISE_ADDRESS", "AFFINITY_PEER_TLS_CERT", "AFFINITY_PEER_TLS_KEY", "AFFINITY_PEER_TLS_CA"):
            if not env.get(variable):
                problems.append(f"compose: {name} does not set {variable}")
        certs.update(v.split(":")[0] for v in service.get("volumes", []) or [] if "/etc/affinity/peer" in v)
        drain = parse_duration(env.get("AFFINITY_DRAIN_TIMEOUT", f"{DEFAULT_DRAIN_TIMEOUT}s"))
        if parse_duration(service.get("stop_grace_period", "10s")) <= drain:
            problems.append(f"compose: {name} stop_grace_period must exceed the drain timeout {drain:g}s")
        if service.get("read_only") is not True or "ALL" not in (service.get("cap_drop") or []):
            problems.append(f"compose: {name} must be read_only with cap_drop ALL")
        user = str(service.get("user", "0")).split(":")[0]
        if not user.isdigit() or user == "0":
            problems.append(f"compose: {name} must run as a numeric non-root user")
    if len(ids) != len(replicas) or None in ids:
        problems.append("compose: every replica needs its own AFFINITY_REPLICA_ID")
    if len(certs) != len(replicas):
        problems.append("compose: every replica needs its own peer certificate directory")

    redis = [s for s in services.values() if "redis" in str(s.get("image", "")).split(":")[0]]
    if not redis or not any("--appendonly" in (r.get("command") or []) and "yes" in (r.get("command") or []) for r in redis):
        problems.append("compose: Redis must run with --appendonly yes")
    if not any(str(s.get("image", "")).startswith("camunda/zeebe:") for s in services.values()):
        problems.append("compose: no camunda/zeebe service")
    for role in ("affinity-worker", "affinity-demo"):
        if not any(command_of(s) == role for s in services.values()):
            problems.append(f"compose: no {role} service")
    balancers = [s for s in services.values() if str(s.get("image", "")).split(":")[0] in ("haproxy", "nginx")]
    if not balancers:
        problems.append("compose: no HAProxy or nginx load balancer")
    for balancer in balancers:
        for volume in balancer.get("volumes", []) or []:
            config = compose_dir / volume.split(":")[0]
            if config.is_file():
                text = config.read_text()
                missing = [n for n in replicas if not re.search(rf"\b{re.escape(n)}:{CLIENT_PORT}\b", text)]
                if missing:
                    problems.append(f"compose: load balancer config {config.name} does not route to {missing}")
    return problems


def check_dockerfile(text: str) -> list[str]:
    problems = []
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    stages = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), l.split()[1]) for l in lines if l.startswith("FROM ")]
    if len(stages) < 2:
        problems.append("Dockerfile: needs a build stage and a runtime stage")
    if not stages or not re.fullmatch(r"swift:6\.\d+(\.\d+)?-bookworm", stages[0]):
        problems.append(f"Dockerfile: build stage must be the official swift:6.x-bookworm image, is {stages[:1]}")
    if not stages or stages[-1] != "debian:bookworm-slim":
        problems.append(f"Dockerfile: runtime stage must be debian:bookworm-slim, is {stages[-1:]}")
    if "--static-swift-stdlib" not in text:
        problems.append("Dockerfile: binaries must link the Swift standard library statically (--static-swift-stdlib)")
    runtime = text[text.rfind("\nFROM "):]
    installed = set()
    for match in re.finditer(r"apt-get install([^&;]*)", re.sub(r"\\\n", " ", runtime)):
        installed |= {w.strip('"').split("=")[0] for w in match.group(1).split() if not w.startswith("-")}
    if installed != {"libhiredis0.14", "ca-certificates"}:
        problems.append(f"Dockerfile: the runtime image must install only libhiredis0.14 and ca-certificates, installs {sorted(installed)}")
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append(f"Dockerfile: the runtime stage must end with a numeric non-root USER, has {users}")
    for product in ("affinity-server", "affinity-worker", "affinity-demo"):
        if product not in text:
            problems.append(f"Dockerfile: {product} is not built into the image")
    return problems


# ---- self-test -------------------------------------------------------------------------------------------

def _replica(docs):
    return find(docs, "Deployment", labels=REPLICA_LABELS)[0]["spec"]["template"]["spec"]


def _container(docs):
    return _replica(docs)["containers"][0]


def _env(docs, name):
    return next(e for e in _container(docs)["env"] if e["name"] == name)


def _policy(docs):
    return next(p for p in find(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], REPLICA_LABELS))


def _ingress_for(docs, port):
    return next(r for r in _policy(docs)["spec"]["ingress"] if any(p["port"] == port for p in r.get("ports", [])))


def _drop(docs, kind, predicate=lambda d: True):
    docs[:] = [d for d in docs if not (d.get("kind") == kind and predicate(d))]


def _peer_cert(docs):
    return next(c for c in find(docs, "Certificate") if c["metadata"]["name"] == "affinity-peer")


K8S_BREAKS = {
    "liveness probe removed": lambda d: _container(d).pop("livenessProbe"),
    "liveness probe on /health/ready (Redis)": lambda d: _container(d)["livenessProbe"]["httpGet"].update(path="/health/ready"),
    "readiness probe removed": lambda d: _container(d).pop("readinessProbe"),
    "startup probe removed": lambda d: _container(d).pop("startupProbe"),
    "preStop removed": lambda d: _container(d).pop("lifecycle"),
    "grace period below drain": lambda d: _replica(d).update(terminationGracePeriodSeconds=28),
    "drain timeout raised above grace": lambda d: _env(d, "AFFINITY_DRAIN_TIMEOUT").update(value="2m"),
    "maxUnavailable 1": lambda d: find(d, "Deployment", labels=REPLICA_LABELS)[0]["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
    "topology spread removed": lambda d: _replica(d).pop("topologySpreadConstraints"),
    "PDB removed": lambda d: _drop(d, "PodDisruptionBudget"),
    "HPA removed": lambda d: _drop(d, "HorizontalPodAutoscaler"),
    "HPA minReplicas 1": lambda d: find(d, "HorizontalPodAutoscaler")[0]["spec"].update(minReplicas=1),
    "client Service removed": lambda d: _drop(d, "Service", lambda s: s["metadata"]["name"] == "affinity"),
    "headless peer Service removed": lambda d: _drop(d, "Service", lambda s: s["spec"].get("clusterIP") == "None" and any(p["port"] == PEER_PORT for p in s["spec"]["ports"])),
    "NetworkPolicy removed": lambda d: _drop(d, "NetworkPolicy", lambda p: selects(p["spec"]["podSelector"], REPLICA_LABELS)),
    "peer port open to all": lambda d: _ingress_for(d, PEER_PORT).pop("from"),
    "peer port open to another namespace": lambda d: _ingress_for(d, PEER_PORT)["from"].append({"namespaceSelector": {}}),
    "metrics port open to all": lambda d: _ingress_for(d, METRICS_PORT).pop("from"),
    "ingress rule for all ports": lambda d: _policy(d)["spec"]["ingress"].append({"from": [{"podSelector": {}}]}),
    "DNS egress removed": lambda d: _policy(d)["spec"].update(egress=[r for r in _policy(d)["spec"]["egress"] if not any(p["port"] == 53 for p in r.get("ports", []))]),
    "Redis egress removed": lambda d: _policy(d)["spec"].update(egress=[r for r in _policy(d)["spec"]["egress"] if not any(p["port"] in (6379, 6380) for p in r.get("ports", []))]),
    "Egress policy type removed": lambda d: _policy(d)["spec"].update(policyTypes=["Ingress"]),
    "root filesystem writable": lambda d: _container(d)["securityContext"].update(readOnlyRootFilesystem=False),
    "capability added": lambda d: _container(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    "capabilities not dropped": lambda d: _container(d)["securityContext"].pop("capabilities"),
    "runs as root": lambda d: (_container(d)["securityContext"].update(runAsUser=0, runAsNonRoot=False)),
    "privilege escalation allowed": lambda d: _container(d)["securityContext"].update(allowPrivilegeEscalation=True),
    "seccomp removed": lambda d: (_replica(d)["securityContext"].pop("seccompProfile"), _container(d)["securityContext"].pop("seccompProfile")),
    "secret as env var": lambda d: _container(d)["env"].append({"name": "AFFINITY_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "affinity-redis", "key": "password"}}}),
    "token file outside a Secret mount": lambda d: _env(d, "AFFINITY_CLIENT_TOKEN_FILE").update(value="/tmp/client-token"),
    "peer TLS Secret mounted by subPath": lambda d: next(m for m in _container(d)["volumeMounts"] if m["name"] == "peer-tls").update(subPath="tls.crt"),
    "replica id not from the pod name": lambda d: _env(d, "AFFINITY_REPLICA_ID").update(value="replica"),
    "peer address not from the pod IP": lambda d: _env(d, "AFFINITY_PEER_ADVERTISE_ADDRESS").update(value="affinity-peer:9443"),
    "worker Deployment removed": lambda d: _drop(d, "Deployment", lambda w: find([w], "Deployment", labels=WORKER_LABELS) != []),
    "worker runs privileged": lambda d: find(d, "Deployment", labels=WORKER_LABELS)[0]["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(privileged=True),
    "peer certificate without client auth": lambda d: _peer_cert(d)["spec"].update(usages=["server auth"]),
    "Certificate field misspelt": lambda d: _peer_cert(d)["spec"].update(dnsName=["x"]),
    "Certificate issuer missing": lambda d: _drop(d, "Issuer"),
    "ServiceMonitor port renamed": lambda d: find(d, "ServiceMonitor")[0]["spec"]["endpoints"][0].update(port="web"),
}

DEV_BREAKS = {
    "dev Redis runs as root": lambda d: find(d, "StatefulSet")[0]["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False),
    "dev Redis image unpinned": lambda d: find(d, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0].update(image="redis:latest"),
}

def _sentinel_egress_removed(d):
    policy = _policy(d)["spec"]
    policy.update(egress=[r for r in policy["egress"] if not any(p["port"] == 26379 for p in r.get("ports", []))])


def _server_config(d):
    return next(c for c in find(d, "ConfigMap") if c["metadata"]["name"].startswith("affinity-server-config"))


SENTINEL_BREAKS = {
    "sentinel egress removed": _sentinel_egress_removed,
    "sentinel URL without master name": lambda d: _server_config(d)["data"].update(
        AFFINITY_REDIS_URL=_server_config(d)["data"]["AFFINITY_REDIS_URL"].split("#")[0]),
    "sentinel Redis runs as root": lambda d: find(d, "StatefulSet")[0]["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False),
    "sentinel container writable": lambda d: find(d, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][1]["securityContext"].update(readOnlyRootFilesystem=False),
}

def _cluster_nodes(d):
    return find(d, "StatefulSet", labels=CLUSTER_NODE_LABELS)[0]


CLUSTER_BREAKS = {
    "cluster URL with a database": lambda d: _server_config(d)["data"].update(
        AFFINITY_REDIS_URL=_server_config(d)["data"]["AFFINITY_REDIS_URL"] + "/1"),
    "cluster of three nodes": lambda d: _cluster_nodes(d)["spec"].update(replicas=3),
    "cluster create Job removed": lambda d: _drop(d, "Job"),
    "cluster node runs as root": lambda d: _cluster_nodes(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False),
    "cluster create Job writable": lambda d: find(d, "Job")[0]["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
    "cluster node image unpinned": lambda d: _cluster_nodes(d)["spec"]["template"]["spec"]["containers"][0].update(image="redis"),
}

COMPOSE_BREAKS = {
    "two replicas only": lambda c: c["services"].pop("replica-3"),
    "Redis without appendonly": lambda c: c["services"]["redis"].update(command=["redis-server"]),
    "replicas share an id": lambda c: c["services"]["replica-2"]["environment"].update(AFFINITY_REPLICA_ID="replica-1"),
    "stop grace below drain": lambda c: c["services"]["replica-1"].update(stop_grace_period="10s"),
    "replica writable and root": lambda c: c["services"]["replica-1"].update(read_only=False, user="0"),
    "no demo": lambda c: c["services"].pop("demo"),
}

DOCKERFILE_BREAKS = {
    "runs as root": lambda t: t.replace("USER 10001:10001", "USER root"),
    "runtime installs curl": lambda t: t.replace('"ca-certificates=${CA_CERTIFICATES_VERSION}"', '"ca-certificates=${CA_CERTIFICATES_VERSION}" curl'),
    "dynamic Swift stdlib": lambda t: t.replace("--static-swift-stdlib", ""),
    "full runtime image": lambda t: t.replace("RUNTIME_IMAGE=debian:bookworm-slim", "RUNTIME_IMAGE=debian:bookworm"),
}


def self_test(
    prod: Path, dev: Path, compose_path: Path, dockerfile: Path, sentinel: Path | None = None, cluster: Path | None = None
) -> int:
    passed = failed = 0

    def expect(name: str, problems: list[str], should_fail: bool) -> None:
        nonlocal passed, failed
        ok = bool(problems) == should_fail
        passed, failed = passed + ok, failed + (not ok)
        detail = problems[0] if problems else "no problem reported"
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail if should_fail or not ok else 'clean'}")

    prod_docs, dev_docs = load_documents(prod), load_documents(dev)
    compose = yaml.safe_load(compose_path.read_text())
    text = dockerfile.read_text()
    expect("prod render is clean", check_kubernetes(prod_docs), False)
    expect("dev render is clean", check_kubernetes(dev_docs), False)
    expect("compose is clean", check_compose(compose, compose_path.parent), False)
    expect("Dockerfile is clean", check_dockerfile(text), False)
    for name, breaks in K8S_BREAKS.items():
        docs = copy.deepcopy(prod_docs)
        breaks(docs)
        expect(f"prod: {name}", check_kubernetes(docs), True)
    for name, breaks in DEV_BREAKS.items():
        docs = copy.deepcopy(dev_docs)
        breaks(docs)
        expect(f"dev: {name}", check_kubernetes(docs), True)
    if sentinel is not None:
        sentinel_docs = load_documents(sentinel)
        expect("dev-sentinel render is clean", check_kubernetes(sentinel_docs), False)
        for name, breaks in SENTINEL_BREAKS.items():
            docs = copy.deepcopy(sentinel_docs)
            breaks(docs)
            expect(f"dev-sentinel: {name}", check_kubernetes(docs), True)
    if cluster is not None:
        cluster_docs = load_documents(cluster)
        expect("dev-cluster render is clean", check_kubernetes(cluster_docs), False)
        for name, breaks in CLUSTER_BREAKS.items():
            docs = copy.deepcopy(cluster_docs)
            breaks(docs)
            expect(f"dev-cluster: {name}", check_kubernetes(docs), True)
    for name, breaks in COMPOSE_BREAKS.items():
        broken = copy.deepcopy(compose)
        breaks(broken)
        expect(f"compose: {name}", check_compose(broken, compose_path.parent), True)
    for name, breaks in DOCKERFILE_BREAKS.items():
        broken = breaks(text)
        assert broken != text, f"self-test edit '{name}' changed nothing"
        expect(f"Dockerfile: {name}", check_dockerfile(broken), True)

    # The command line itself must exit non-zero on a broken file.
    with tempfile.TemporaryDirectory() as folder:
        docs = copy.deepcopy(prod_docs)
        K8S_BREAKS["liveness probe removed"](docs)
        broken_file = Path(folder) / "broken.yaml"
        broken_file.write_text(yaml.safe_dump_all(docs))
        run = subprocess.run([sys.executable, __file__, "k8s", str(broken_file)], capture_output=True, text=True)
        expect("command line exits 1 on a broken render", run.stdout.splitlines()[:1] if run.returncode == 1 else [], True)

    print(f"check_manifests self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


# ---- command line ------------------------------------------------------------------------------------------

def report(label: str, problems: list[str]) -> int:
    for problem in problems:
        print(f"  FAIL {problem}")
    print(f"{label}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    command, args = argv[1], [Path(a) for a in argv[2:]]
    if command == "k8s" and args:
        return max(report(f"check_manifests k8s {p}", check_kubernetes(load_documents(p))) for p in args)
    if command == "split" and len(args) == 2:
        docs = load_documents(args[0])
        builtin = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CUSTOM_KINDS]
        custom = sorted({f"{d['kind']} ({d['apiVersion']})" for d in docs if d not in builtin})
        args[1].write_text(yaml.safe_dump_all(builtin, sort_keys=False))
        if custom:
            print(f"note: {args[0].name}: custom resources left out of kubernetes-validate (no bundled schema): "
                  f"{', '.join(custom)}; checked against this project's strict schema by check_manifests.py k8s")
        return 0
    if command == "compose" and len(args) == 1:
        return report(f"check_manifests compose {args[0]}", check_compose(yaml.safe_load(args[0].read_text()), args[0].parent))
    if command == "dockerfile" and len(args) == 1:
        return report(f"check_manifests dockerfile {args[0]}", check_dockerfile(args[0].read_text()))
    if command == "self-test" and len(args) in (4, 5, 6):
        return self_test(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
