#!/bin/sh
# A Redis Cluster node (cluster-enabled, append-only file and nodes.conf on the persistent volume).
# It announces its stable host name, so that clients (CLUSTER SHARDS, MOVED, ASK) and the other nodes
# reach it by name whatever its pod IP. nodes.conf keeps the other nodes' last IPs: before starting,
# each known node's IP is replaced by the current address of its host name, so that the nodes find
# each other again even after every pod restarted at once with new IPs. The password goes into a
# config file in an emptyDir, never on the command line.
set -eu
self="$(hostname).affinity-redis-cluster-headless"
password="$(cat /etc/redis-auth/password)"
nodes=/data/nodes.conf
if [ -s "$nodes" ]; then
    cp "$nodes" /run/redis/nodes.conf.new
    # a line's second field is ip:port@busport,hostname
    awk '{ split($2, a, ","); if (a[2] != "") print a[2] }' "$nodes" | while read -r name; do
        address="$(getent hosts "$name" | awk '{ print $1; exit }')"
        if [ -n "$address" ]; then
            awk -v name="$name" -v address="$address" '{
                split($2, a, ","); if (a[2] == name) { sub(/^[^:]*/, address, $2) } print
            }' /run/redis/nodes.conf.new >/run/redis/nodes.conf.tmp
            mv /run/redis/nodes.conf.tmp /run/redis/nodes.conf.new
        fi
    done
    cp /run/redis/nodes.conf.new "$nodes"
    rm -f /run/redis/nodes.conf.new
fi
{
    echo "port 6379"
    echo "dir /data"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "protected-mode no"
    echo "cluster-enabled yes"
    echo "cluster-config-file $nodes"
    echo "cluster-node-timeout 5000"
    echo "cluster-require-full-coverage yes"
    echo "cluster-announce-hostname $self"
    echo "cluster-preferred-endpoint-type hostname"
    echo "requirepass $password"
    echo "masterauth $password"
} >/run/redis/redis.conf
exec redis-server /run/redis/redis.conf
