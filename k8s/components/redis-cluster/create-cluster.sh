#!/bin/sh
# Joins the six nodes into a cluster of three masters with one replica each, once: waits until every
# node answers, and does nothing when any node already knows other nodes (the cluster exists, or a
# previous run began creating it: fix that by hand, see docs/REDIS.md). CLUSTER MEET needs IP
# addresses, so the host names are resolved here; the nodes announce their host names afterwards.
set -eu
REDISCLI_AUTH="$(cat /etc/redis-auth/password)"
export REDISCLI_AUTH
addresses=""
for pod in 0 1 2 3 4 5; do
    name="affinity-redis-cluster-$pod.affinity-redis-cluster-headless"
    tries=0
    until [ "$(timeout 3 redis-cli -h "$name" ping 2>/dev/null)" = "PONG" ]; do
        tries=$((tries + 1))
        if [ "$tries" -ge 120 ]; then
            echo "create-cluster: $name does not answer" >&2
            exit 1
        fi
        sleep 5
    done
    known="$(redis-cli -h "$name" cluster info | tr -d '\r' | awk -F: '$1 == "cluster_known_nodes" { print $2 }')"
    if [ "${known:-1}" -gt 1 ]; then
        echo "create-cluster: $name already knows $known nodes; the cluster exists, nothing to do"
        exit 0
    fi
    address="$(getent hosts "$name" | awk '{ print $1; exit }')"
    addresses="$addresses $address:6379"
done
# shellcheck disable=SC2086 # one argument per node
redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
