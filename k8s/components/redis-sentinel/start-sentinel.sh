#!/bin/sh
# A sentinel monitoring the master `affinity` (quorum 2 of 3) by host name. Its config file lives in
# an emptyDir because a sentinel rewrites it.
set -eu
self="$(hostname).affinity-redis-headless"
master="$(/scripts/find-master.sh)"
if [ -z "$master" ]; then
    master="affinity-redis-0.affinity-redis-headless"
fi
sentinel_password="$(cat /etc/redis-auth/sentinel-password)"
{
    echo "port 26379"
    echo "dir /run/sentinel"
    echo "sentinel resolve-hostnames yes"
    echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip $self"
    echo "requirepass $sentinel_password"
    echo "sentinel sentinel-pass $sentinel_password"
    echo "sentinel monitor affinity $master 6379 2"
    echo "sentinel auth-pass affinity $(cat /etc/redis-auth/password)"
    echo "sentinel down-after-milliseconds affinity 5000"
    echo "sentinel failover-timeout affinity 60000"
    echo "sentinel parallel-syncs affinity 1"
} >/run/sentinel/sentinel.conf
exec redis-server /run/sentinel/sentinel.conf --sentinel
