/// The Lua scripts of ``RedisRouteStore``. Each runs atomically on Redis and touches the keys of one process
/// instance (one hash tag, so one Redis Cluster slot) or one replica.
///
/// Keys of process instance K: `route` is a hash {replica, client} with the route TTL; `parked` is a list of
/// outcome ids in arrival order and `outcomes` a hash id -> payload, both with the park TTL.
enum RouteScripts {
    /// KEYS: route, parked, outcomes. ARGV: replica, client, route TTL (ms).
    /// Points the route at (replica, client) and returns the parked outcomes, flat [id, payload, ...], in order,
    /// without removing them.
    static let subscribe = RedisScript(
        name: "affinity.subscribe",
        source: """
            redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'client', ARGV[2])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            local ids = redis.call('LRANGE', KEYS[2], 0, -1)
            local result = {}
            for _, id in ipairs(ids) do
              local payload = redis.call('HGET', KEYS[3], id)
              if payload then
                result[#result + 1] = id
                result[#result + 1] = payload
              end
            end
            return result
            """)

    /// KEYS: parked, outcomes. ARGV: id. Removes one parked outcome; returns 1 if it was there, else 0.
    static let acknowledge = RedisScript(
        name: "affinity.acknowledge",
        source: """
            local removed = redis.call('HDEL', KEYS[2], ARGV[1])
            redis.call('LREM', KEYS[1], 0, ARGV[1])
            return removed
            """)

    /// KEYS: route. ARGV: replica, client. Deletes the route only if it still points at (replica, client).
    static let unsubscribe = RedisScript(
        name: "affinity.unsubscribe",
        source: """
            local owner = redis.call('HMGET', KEYS[1], 'replica', 'client')
            if owner[1] == ARGV[1] and owner[2] == ARGV[2] then
              return redis.call('DEL', KEYS[1])
            end
            return 0
            """)

    /// KEYS: route, parked, outcomes. ARGV: id, payload, replica, park TTL (ms), maximum parked per key.
    /// If the route points at a replica other than ARGV[3], returns {'route', owner}. Otherwise parks the
    /// outcome (once per id) and returns {'parked', here} or {'duplicate', here} (here = 1 when the route
    /// points at ARGV[3]), or {'full', count} when the key already holds the maximum.
    static let routeOrPark = RedisScript(
        name: "affinity.route-or-park",
        source: """
            local owner = redis.call('HGET', KEYS[1], 'replica')
            if owner and owner ~= ARGV[3] then
              return {'route', owner}
            end
            local here = 0
            if owner then here = 1 end
            if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
              redis.call('PEXPIRE', KEYS[2], ARGV[4])
              redis.call('PEXPIRE', KEYS[3], ARGV[4])
              return {'duplicate', here}
            end
            local count = redis.call('LLEN', KEYS[2])
            if count >= tonumber(ARGV[5]) then
              return {'full', count}
            end
            redis.call('RPUSH', KEYS[2], ARGV[1])
            redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
            redis.call('PEXPIRE', KEYS[2], ARGV[4])
            redis.call('PEXPIRE', KEYS[3], ARGV[4])
            return {'parked', here}
            """)

    /// KEYS: route. ARGV: replica, client, route TTL (ms). Sets or refreshes the route only if it is absent
    /// ({'restored'}) or already points at this replica ({'refreshed'}); else {'taken', owner}.
    static let refreshRoute = RedisScript(
        name: "affinity.refresh-route",
        source: """
            local owner = redis.call('HGET', KEYS[1], 'replica')
            if owner and owner ~= ARGV[1] then
              return {'taken', owner}
            end
            redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'client', ARGV[2])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            if owner then return {'refreshed'} end
            return {'restored'}
            """)

    /// KEYS: replica. ARGV: peer address, instance nonce, TTL (ms). Registers unless another live instance
    /// (other nonce) holds the id: {'registered'} or {'taken', address}.
    static let registerReplica = RedisScript(
        name: "affinity.register-replica",
        source: """
            local nonce = redis.call('HGET', KEYS[1], 'nonce')
            if nonce and nonce ~= ARGV[2] then
              return {'taken', redis.call('HGET', KEYS[1], 'address') or ''}
            end
            redis.call('HSET', KEYS[1], 'address', ARGV[1], 'nonce', ARGV[2])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            return {'registered'}
            """)

    /// KEYS: replica. ARGV: instance nonce, TTL (ms). 'refreshed', 'expired' (no registration) or 'taken'.
    static let heartbeat = RedisScript(
        name: "affinity.heartbeat",
        source: """
            local nonce = redis.call('HGET', KEYS[1], 'nonce')
            if not nonce then return 'expired' end
            if nonce ~= ARGV[1] then return 'taken' end
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return 'refreshed'
            """)

    /// KEYS: replica. ARGV: instance nonce. Deletes the registration only if it is ours; 1 or 0.
    static let deregisterReplica = RedisScript(
        name: "affinity.deregister-replica",
        source: """
            if redis.call('HGET', KEYS[1], 'nonce') == ARGV[1] then
              return redis.call('DEL', KEYS[1])
            end
            return 0
            """)
}
