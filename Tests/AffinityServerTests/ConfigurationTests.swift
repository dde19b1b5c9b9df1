import AffinityServer
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    @Test func frameLimitIsAboveTheMessageLimit() {
        var configuration = AffinityConfiguration(replicaID: "r")
        #expect(configuration.webSocketFrameLimit > configuration.maxMessageBytes)
        configuration.maxMessageBytes = 1024
        #expect(configuration.webSocketFrameLimit >= 1024 + 64 * 1024)
    }
}
