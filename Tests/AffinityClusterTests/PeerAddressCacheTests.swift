import AffinityPeer
import Testing

@testable import AffinityCluster

@Suite("PeerAddressCache")
struct PeerAddressCacheTests {
    let start = ContinuousClock.now
    let address = PeerAddress(host: "10.0.0.7", port: 9443)

    @Test func unknownReplicaHasNoAddress() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        #expect(cache.address(of: "r1", at: start) == nil)
    }

    @Test func addressIsReusedWithinItsLifetime() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        cache.store(address, for: "r1", at: start)
        #expect(cache.address(of: "r1", at: start + .seconds(1)) == address)
        #expect(cache.address(of: "r2", at: start + .seconds(1)) == nil)
    }

    @Test func addressExpiresAndIsDropped() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        cache.store(address, for: "r1", at: start)
        #expect(cache.address(of: "r1", at: start + .seconds(2)) == nil)
        #expect(cache.count == 0)
    }

    @Test func forgottenReplicaIsLookedUpAgain() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        cache.store(address, for: "r1", at: start)
        cache.forget("r1")
        #expect(cache.address(of: "r1", at: start) == nil)
    }

    @Test func newAddressReplacesTheOldOne() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        cache.store(address, for: "r1", at: start)
        let moved = PeerAddress(host: "10.0.0.8", port: 9443)
        cache.store(moved, for: "r1", at: start + .seconds(1))
        #expect(cache.address(of: "r1", at: start + .milliseconds(2500)) == moved)
    }
}
