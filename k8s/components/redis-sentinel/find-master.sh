#!/bin/sh
# Prints the host name of the current master as a sentinel reports it, or nothing when no sentinel
# answers (the first start of the set). Asks every pod's sentinel in turn.
set -u
for pod in 0 1 2; do
    address="$(REDISCLI_AUTH="$(cat /etc/redis-auth/sentinel-password)" timeout 3 \
        redis-cli -h "affinity-redis-$pod.affinity-redis-headless" -p 26379 \
        SENTINEL get-master-addr-by-name affinity 2>/dev/null | head -n 1)"
    case "$address" in
        "" | *ERR* | *NOAUTH* | *WRONGPASS*) ;;
        *)
            echo "$address"
            exit 0
            ;;
    esac
done
