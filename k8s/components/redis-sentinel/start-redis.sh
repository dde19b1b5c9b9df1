#!/bin/sh
# A Redis data node: a replica of the master the sentinels name, else (first start) of
# affinity-redis-0, which starts as the master. The passwords go into a config file in an emptyDir,
# never on the command line.
set -eu
self="$(hostname).affinity-redis-headless"
master="$(/scripts/find-master.sh)"
if [ -z "$master" ] && [ "$(hostname)" != "affinity-redis-0" ]; then
    master="affinity-redis-0.affinity-redis-headless"
fi
password="$(cat /etc/redis-auth/password)"
{
    echo "port 6379"
    echo "dir /data"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "protected-mode no"
    echo "replica-announce-ip $self"
    echo "requirepass $password"
    echo "masterauth $password"
    if [ -n "$master" ] && [ "$master" != "$self" ]; then
        echo "replicaof $master 6379"
    fi
} >/run/redis/redis.conf
exec redis-server /run/redis/redis.conf
