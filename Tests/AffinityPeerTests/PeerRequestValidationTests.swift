import Foundation
import Testing

@testable import AffinityPeer

@Suite("Validation of forwarded requests")
struct PeerRequestValidationTests {
    @Test(
        "process instance keys",
        arguments: [
            ("1", true), ("2251799813685249", true), ("9223372036854775807", true),
            ("9223372036854775808", false), ("0", false), ("01", false), ("", false), ("-1", false),
            ("12a", false), (" 1", false), ("1.0", false), ("12345678901234567890", false), ("١٢", false),
        ])
    func keys(key: String, valid: Bool) {
        let problem = PeerRequestValidation.problem(
            id: "1", key: key, variables: Data("{}".utf8), originReplica: "r1")
        #expect((problem == nil) == valid, "\(key): \(problem ?? "accepted")")
    }

    @Test(
        "variables must look like a JSON object",
        arguments: [
            ("{}", true), (" {\"a\":1}\n", true), ("{\"a\":[1,2]}", true),
            ("", false), ("   ", false), ("[1]", false), ("\"{}\"", false), ("{", false), ("}", false),
            ("null", false), ("{}x", false),
        ])
    func variables(text: String, valid: Bool) {
        #expect(PeerRequestValidation.looksLikeJSONObject(Data(text.utf8)) == valid)
    }

    @Test("each envelope field is checked")
    func envelope() {
        let good = (id: "job-1", key: "42", variables: Data("{}".utf8), origin: "replica-1")
        #expect(
            PeerRequestValidation.problem(
                id: good.id, key: good.key, variables: good.variables, originReplica: good.origin) == nil)
        #expect(
            PeerRequestValidation.problem(id: "", key: good.key, variables: good.variables, originReplica: good.origin)
                != nil)
        #expect(
            PeerRequestValidation.problem(
                id: String(repeating: "x", count: 257), key: good.key, variables: good.variables,
                originReplica: good.origin) != nil)
        #expect(
            PeerRequestValidation.problem(id: good.id, key: "x", variables: good.variables, originReplica: good.origin)
                != nil)
        #expect(
            PeerRequestValidation.problem(id: good.id, key: good.key, variables: Data(), originReplica: good.origin)
                != nil)
        #expect(
            PeerRequestValidation.problem(id: good.id, key: good.key, variables: good.variables, originReplica: "")
                != nil)
    }
}
