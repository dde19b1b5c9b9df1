import AffinityRedis
import Testing

@Suite("Redis URL and configuration")
struct RedisConfigurationTests {
    @Test func parsesAPlainURL() throws {
        let configuration = try RedisConfiguration(url: "redis://redis.internal:6380/3")
        #expect(configuration.host == "redis.internal")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 3)
        #expect(configuration.tls == nil)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
    }

    @Test func defaultsThePortAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
    }

    @Test func parsesACLUserAndPercentEncodedPassword() throws {
        let configuration = try RedisConfiguration(url: "rediss://affinity:p%40ss%3Aword@10.0.0.5:6390/1")
        #expect(configuration.username == "affinity")
        #expect(configuration.password == "p@ss:word")
        #expect(configuration.tls == RedisConfiguration.TLS())
        #expect(configuration.tls?.verifyCertificate == true)
        #expect(configuration.endpoint == "10.0.0.5:6390")
    }

    @Test func parsesAPasswordWithoutUser() throws {
        let withColon = try RedisConfiguration(url: "redis://:secret@h:1")
        #expect(withColon.username == nil)
        #expect(withColon.password == "secret")
        let bare = try RedisConfiguration(url: "redis://secret@h")
        #expect(bare.password == "secret")
    }

    @Test func parsesIPv6Hosts() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:7000")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7000)
        #expect(configuration.endpoint == "[::1]:7000")
    }

    @Test(arguments: [
        "localhost:6379", "http://h", "redis://", "redis://h:0", "redis://h:99999", "redis://h:x",
        "redis://h/notanumber", "redis://u:%zz@h", "redis://[::1", "redis://h/-1",
    ])
    func rejectsInvalidURLs(_ url: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .configuration)
    }

    @Test func neverPutsThePasswordInErrors() {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://u:topsecret@h:bad") }
        #expect(error?.message.contains("topsecret") == false)
        #expect(error?.message.contains("***") == true)
    }

    @Test func commandDescriptionsShowOnlyTheName() {
        let command: RedisCommand = ["auth", "user", "topsecret"]
        #expect(command.description == "AUTH")
    }
}
