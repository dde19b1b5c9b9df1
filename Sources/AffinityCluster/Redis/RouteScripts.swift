import AffinityRedis

/// The Lua scripts of the cluster's Redis schema (``RedisOutcomeStore``, ``RedisReplicaRecords``). Each runs
/// atomically on Redis and touches the keys of one process instance (one hash tag, so one Redis Cluster slot)
/// or one replica.
///
/// Keys of process instance K: `route` is a hash {replica, client} with the route TTL; `parked` is a list of
/// outcome ids in arrival order, `outcomes` a hash id -> payload and `bytes` the sum of their payload sizes,
/// all with the park TTL; `acknowledged` is a set of the ids clients acknowledged, kept for the park TTL.
enum RouteScripts {
    /// A Lua function shared by the scripts that hand parked outcomes over: `page(parked, outcomes, count,
    /// bytes)` returns `{hasMore, id, payload, id, payload, ...}` for the oldest parked outcomes, at most `count`
    /// of them and, past the first, at most `bytes` of payload, so that no reply grows with the backlog. An id
    /// whose payload is gone (expired a moment before the list) is dropped from the list.
    static let pageFunction = """
        local function page(parked, outcomes, count, limit)
          local ids = redis.call('LRANGE', parked, 0, count - 1)
          local result = {0}
          local bytes = 0
          local taken = 0
          for _, id in ipairs(ids) do
            local payload = redis.call('HGET', outcomes, id)
            if payload then
              if taken > 0 and bytes + #payload > limit then
                result[1] = 1
                return result
              end
              result[#result + 1] = id
              result[#result + 1] = payload
              taken = taken + 1
              bytes = bytes + #payload
            else
              redis.call('LREM', parked, 0, id)
            end
          end
          if #ids == count and redis.call('LLEN', parked) > #ids then result[1] = 1 end
          return result
        end

        """

    /// KEYS: route, parked, outcomes. ARGV: replica, client, route TTL (ms), page count, page bytes.
    /// Points the route at (replica, client) and returns the first page of the parked outcomes, in order,
    /// without removing them: `{hasMore, id, payload, ...}`.
    static let subscribe = RedisScript(
        name: "affinity.subscribe",
        source: pageFunction + """
            redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'client', ARGV[2])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            return page(KEYS[2], KEYS[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
            """)

    /// KEYS: parked, outcomes. ARGV: page count, page bytes. The first page of the parked outcomes (as
    /// ``subscribe`` returns it), without touching the route.
    static let parkedPage = RedisScript(
        name: "affinity.parked-page",
        source: pageFunction + """
            return page(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
            """)

    /// KEYS: parked, outcomes, acknowledged, bytes. ARGV: id, park TTL (ms). Removes one parked outcome and
    /// remembers the id as acknowledged for the park TTL; returns 1 if it was parked, else 0.
    static let acknowledge = RedisScript(
        name: "affinity.acknowledge",
        source: """
            local size = redis.call('HSTRLEN', KEYS[2], ARGV[1])
            local removed = redis.call('HDEL', KEYS[2], ARGV[1])
            if removed == 1 then
              redis.call('LREM', KEYS[1], 0, ARGV[1])
              if redis.call('DECRBY', KEYS[4], size) <= 0 then redis.call('DEL', KEYS[4]) end
            end
            redis.call('SADD', KEYS[3], ARGV[1])
            redis.call('PEXPIRE', KEYS[3], ARGV[2])
            return removed
            """)

    /// KEYS: route, parked, outcomes, acknowledged, bytes. ARGV: replica, client, park TTL (ms), then the ids
    /// acknowledged live for the key on the leaving subscriber's replica. Deletes the route only if it still
    /// points at (replica, client) (an empty replica leaves it alone); remembers the ids as acknowledged and
    /// removes any parked copy of them (a late park). Returns 1 if the route was deleted, else 0.
    static let unsubscribe = RedisScript(
        name: "affinity.unsubscribe",
        source: """
            local deleted = 0
            local owner = redis.call('HMGET', KEYS[1], 'replica', 'client')
            if ARGV[1] ~= '' and owner[1] == ARGV[1] and owner[2] == ARGV[2] then
              deleted = redis.call('DEL', KEYS[1])
            end
            if #ARGV > 3 then
              if redis.call('EXISTS', KEYS[3]) == 1 then
                for i = 4, #ARGV do
                  local size = redis.call('HSTRLEN', KEYS[3], ARGV[i])
                  if redis.call('HDEL', KEYS[3], ARGV[i]) == 1 then
                    redis.call('LREM', KEYS[2], 0, ARGV[i])
                    if redis.call('DECRBY', KEYS[5], size) <= 0 then redis.call('DEL', KEYS[5]) end
                  end
                end
              end
              redis.call('SADD', KEYS[4], unpack(ARGV, 4))
              redis.call('PEXPIRE', KEYS[4], ARGV[3])
            end
            return deleted
            """)

    /// KEYS: route, parked, outcomes, acknowledged, bytes. ARGV: id, payload, replica, park TTL (ms), maximum
    /// parked per key, maximum parked bytes per key. Both parking operations (route-or-park and park after a
    /// failed forward) are this one script:
    /// an id a client acknowledged already answers {'acknowledged'}; a route to a replica other than ARGV[3]
    /// answers {'route', owner, client}; otherwise the outcome is parked once per id: {'parked'}, or
    /// {'duplicate'} for the same id with the same payload, {'conflict'} for the same id with another payload,
    /// {'full', count} or {'full-bytes', bytes} when the key already holds its maximum.
    static let routeOrPark = RedisScript(
        name: "affinity.route-or-park",
        source: """
            if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
              return {'acknowledged'}
            end
            local owner = redis.call('HMGET', KEYS[1], 'replica', 'client')
            if owner[1] and owner[1] ~= ARGV[3] then
              return {'route', owner[1], owner[2] or ''}
            end
            local existing = redis.call('HGET', KEYS[3], ARGV[1])
            if existing then
              if existing ~= ARGV[2] then return {'conflict'} end
              redis.call('PEXPIRE', KEYS[2], ARGV[4])
              redis.call('PEXPIRE', KEYS[3], ARGV[4])
              redis.call('PEXPIRE', KEYS[5], ARGV[4])
              return {'duplicate'}
            end
            local count = redis.call('LLEN', KEYS[2])
            if count >= tonumber(ARGV[5]) then
              return {'full', count}
            end
            local bytes = tonumber(redis.call('GET', KEYS[5]) or '0')
            if bytes + #ARGV[2] > tonumber(ARGV[6]) then
              return {'full-bytes', bytes}
            end
            redis.call('RPUSH', KEYS[2], ARGV[1])
            redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
            redis.call('INCRBY', KEYS[5], #ARGV[2])
            redis.call('PEXPIRE', KEYS[2], ARGV[4])
            redis.call('PEXPIRE', KEYS[3], ARGV[4])
            redis.call('PEXPIRE', KEYS[5], ARGV[4])
            return {'parked'}
            """)

    /// KEYS: route, parked. ARGV: replica, client, route TTL (ms). Sets or refreshes the route only if it is
    /// absent ({'restored', parked}) or already points at this replica ({'refreshed', parked}); else
    /// {'taken', owner}. `parked` is the number of outcomes parked for the key: a subscriber must read them.
    static let refreshRoute = RedisScript(
        name: "affinity.refresh-route",
        source: """
            local owner = redis.call('HGET', KEYS[1], 'replica')
            if owner and owner ~= ARGV[1] then
              return {'taken', owner}
            end
            redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'client', ARGV[2])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            local parked = redis.call('LLEN', KEYS[2])
            if owner then return {'refreshed', parked} end
            return {'restored', parked}
            """)

    /// KEYS: replica. ARGV: peer address, instance nonce, TTL (ms), and optionally the nonce of a previous
    /// instance proven gone. Registers unless another live instance (another nonce, not the one being replaced)
    /// holds the id: {'registered'} or {'taken', address, nonce}.
    static let registerReplica = RedisScript(
        name: "affinity.register-replica",
        source: """
            local nonce = redis.call('HGET', KEYS[1], 'nonce')
            if nonce and nonce ~= ARGV[2] and nonce ~= ARGV[4] then
              return {'taken', redis.call('HGET', KEYS[1], 'address') or '', nonce}
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
