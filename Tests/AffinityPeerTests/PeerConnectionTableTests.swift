import Testing

@testable import AffinityPeer

@Suite("The pool's connection table")
struct PeerConnectionTableTests {
    final class Connection {
        let name: String
        init(_ name: String) { self.name = name }
    }

    let first = PeerAddress(host: "10.0.0.1", port: 9443)
    let second = PeerAddress(host: "10.0.0.2", port: 9443)

    @Test("the first lookup creates, later lookups with the same generation reuse")
    func createThenReuse() {
        var table = PeerConnectionTable<Connection>()
        var made = 0
        let make = { () -> Connection in
            made += 1
            return Connection("c\(made)")
        }
        guard case .created(let created, let replaced) = table.connection(for: first, generation: 1, make: make)
        else {
            Issue.record("expected a new connection")
            return
        }
        #expect(replaced == nil)
        guard case .existing(let reused) = table.connection(for: first, generation: 1, make: make) else {
            Issue.record("expected the existing connection")
            return
        }
        #expect(reused === created)
        #expect(made == 1)
        #expect(table.addresses == [first])
    }

    @Test("each peer has its own connection")
    func onePerPeer() {
        var table = PeerConnectionTable<Connection>()
        guard case .created(let a, _) = table.connection(for: first, generation: 1, make: { Connection("a") }),
            case .created(let b, _) = table.connection(for: second, generation: 1, make: { Connection("b") })
        else {
            Issue.record("expected two new connections")
            return
        }
        #expect(a !== b)
        #expect(table.addresses == [first, second])
    }

    @Test("a new TLS generation replaces the connection and hands back the old one")
    func renewAfterReload() {
        var table = PeerConnectionTable<Connection>()
        guard case .created(let old, _) = table.connection(for: first, generation: 1, make: { Connection("old") }),
            case .created(let new, let replaced) = table.connection(
                for: first, generation: 2, make: { Connection("new") })
        else {
            Issue.record("expected a renewal")
            return
        }
        #expect(replaced === old)
        #expect(new !== old)
        // The old connection stopping later must not drop its replacement.
        table.forget(old)
        guard case .existing(let current) = table.connection(for: first, generation: 2, make: { Connection("x") })
        else {
            Issue.record("expected the renewed connection")
            return
        }
        #expect(current === new)
    }

    @Test("a stopped connection is forgotten; the next lookup creates a new one")
    func forgetStopped() {
        var table = PeerConnectionTable<Connection>()
        guard case .created(let stopped, _) = table.connection(for: first, generation: 1, make: { Connection("a") })
        else {
            Issue.record("expected a new connection")
            return
        }
        table.forget(stopped)
        #expect(table.addresses.isEmpty)
        guard case .created(_, let replaced) = table.connection(for: first, generation: 1, make: { Connection("b") })
        else {
            Issue.record("expected a new connection")
            return
        }
        #expect(replaced == nil)
    }

    @Test("removing a peer returns its connection once")
    func remove() {
        var table = PeerConnectionTable<Connection>()
        _ = table.connection(for: first, generation: 1, make: { Connection("a") })
        #expect(table.remove(first)?.name == "a")
        #expect(table.remove(first) == nil)
        #expect(table.remove(second) == nil)
    }

    @Test("after shut down every connection is handed back and lookups are refused without making one")
    func shutDown() {
        var table = PeerConnectionTable<Connection>()
        _ = table.connection(for: first, generation: 1, make: { Connection("a") })
        _ = table.connection(for: second, generation: 1, make: { Connection("b") })
        let closed = table.shutDown()
        #expect(Set(closed.map(\.name)) == ["a", "b"])
        #expect(table.isShutDown)
        var made = false
        guard
            case .shutDown = table.connection(
                for: first, generation: 1,
                make: {
                    made = true; return Connection("c")
                })
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(!made)
        #expect(table.shutDown().isEmpty)
    }

    @Test("a failing factory leaves the table unchanged")
    func failingFactory() {
        struct Broken: Error {}
        var table = PeerConnectionTable<Connection>()
        _ = table.connection(for: first, generation: 1, make: { Connection("a") })
        #expect(throws: Broken.self) {
            _ = try table.connection(for: first, generation: 2, make: { throw Broken() })
        }
        guard case .existing(let kept) = table.connection(for: first, generation: 1, make: { Connection("b") }) else {
            Issue.record("expected the previous connection")
            return
        }
        #expect(kept.name == "a")
    }
}
