import Testing

@testable import AffinityPeer

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

    /// A replica that moved or left hands back its old address once nobody uses it, for its connection to go.
    @Test func anAddressNoReplicaUsesAnyMoreIsHandedBack() {
        var cache = PeerAddressCache(lifetime: .seconds(2))
        let moved = PeerAddress(host: "10.0.0.8", port: 9443)
        #expect(cache.store(address, for: "r1", at: start) == nil, "a first address replaces nothing")
        #expect(cache.store(address, for: "r1", at: start + .seconds(3)) == nil, "the same address again")
        #expect(cache.store(moved, for: "r1", at: start + .seconds(4)) == address, "r1 restarted elsewhere")
        // r2 took over r1's new address (a pod IP reused): r1 leaving must not close r2's connection
        #expect(cache.store(moved, for: "r2", at: start + .seconds(5)) == nil)
        #expect(cache.unregistered("r1") == nil)
        #expect(cache.address(of: "r1", at: start + .seconds(5)) == nil)
        #expect(cache.unregistered("r2") == moved)
        #expect(cache.unregistered("r3") == nil, "an unknown replica has nothing to hand back")
    }
}
