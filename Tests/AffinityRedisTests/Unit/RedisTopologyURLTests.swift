import AffinityRedis
import Testing

@Suite("Sentinel and cluster URLs")
struct RedisTopologyURLTests {
    @Test func parsesASentinelURL() throws {
        let configuration = try RedisConfiguration(
            url: "redis-sentinel://:secret@s1.internal:26380,s2.internal,[::1]:26381/2#my%20master")
        guard case .sentinel(let settings) = configuration.topology else {
            Issue.record("not a sentinel topology: \(configuration.topology)")
            return
        }
        #expect(settings.masterName == "my master")
        #expect(
            settings.sentinels == [
                RedisEndpoint(host: "s1.internal", port: 26380), RedisEndpoint(host: "s2.internal", port: 26379),
                RedisEndpoint(host: "::1", port: 26381),
            ])
        #expect(settings.password == nil, "the URL's password is the data nodes'")
        #expect(configuration.password == "secret")
        #expect(configuration.database == 2)
        #expect(configuration.tls == nil)
        #expect(
            configuration.endpoint == "sentinel master my master via s1.internal:26380,s2.internal:26379,[::1]:26381")
    }

    @Test func sentinelWithTLS() throws {
        let configuration = try RedisConfiguration(url: "rediss-sentinel://s1:26379#mymaster")
        #expect(configuration.tls == RedisConfiguration.TLS())
        guard case .sentinel(let settings) = configuration.topology else {
            Issue.record("not a sentinel topology")
            return
        }
        #expect(settings.sentinels == [RedisEndpoint(host: "s1", port: 26379)])
        #expect(configuration.database == 0)
    }

    @Test func parsesAClusterURL() throws {
        let plain = try RedisConfiguration(url: "redis-cluster://a:7000,b:7001,c")
        #expect(
            plain.topology
                == .cluster(seeds: [
                    RedisEndpoint(host: "a", port: 7000), RedisEndpoint(host: "b", port: 7001),
                    RedisEndpoint(host: "c", port: 6379),
                ]))
        #expect(plain.tls == nil)
        let secure = try RedisConfiguration(url: "rediss-cluster://u:p@a:7000/0")
        #expect(secure.tls != nil)
        #expect(secure.username == "u")
        #expect(secure.password == "p")
    }

    @Test func aPlainURLIsStandalone() throws {
        #expect(try RedisConfiguration(url: "redis://h:1").topology == .standalone)
        #expect(RedisConfiguration().topology == .standalone)
    }

    @Test(arguments: [
        "redis-sentinel://s1:26379,s2:26379/0", "redis-sentinel://s1#", "redis-sentinel://s1,,s2#m",
        "redis-sentinel://s1:0#m", "redis-sentinel://#m", "redis://a:1,b:2", "redis://h#m", "redis-cluster://a#m",
        "redis-cluster://a:1,b:2/3", "redis-sentinal://s1#m", "redis-cluster://a:1,b:x",
    ])
    func rejectsInvalidTopologyURLs(_ url: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("invalid Redis URL") == true)
    }

    @Test func aMissingMasterNameSaysHowToWriteIt() {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis-sentinel://s1:26379/0") }
        #expect(error?.message.contains("#mymaster") == true)
    }
}
