import Foundation
import Testing
import ZeebeClient

@testable import AffinityDemo

@Suite("affinity-demo inputs")
struct DemoInputTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples")

    @Test func embeddedProcessesAreTheExampleFiles() throws {
        let order = try String(contentsOf: Self.examples.appendingPathComponent("order-process.bpmn"), encoding: .utf8)
        let chat = try String(contentsOf: Self.examples.appendingPathComponent("chat-process.bpmn"), encoding: .utf8)
        #expect(order.trimmingCharacters(in: .newlines) == ExampleProcesses.orderProcessBPMN)
        #expect(chat.trimmingCharacters(in: .newlines) == ExampleProcesses.chatProcessBPMN)
    }

    @Test func messageRequestAcceptsStringOrNumberKeys() throws {
        let text = try DemoMessageRequest(
            json: Array(
                #"{"correlationKey":"c-1","processInstanceKey":"2251799813685249","variables":{"text":"hi"}}"#.utf8))
        #expect(text.processInstanceKey == 2_251_799_813_685_249)
        #expect(text.correlationKey == "c-1")
        #expect(text.variables.json.contains("hi"))
        let number = try DemoMessageRequest(json: Array(#"{"correlationKey":"c-1","processInstanceKey":17}"#.utf8))
        #expect(number.processInstanceKey == 17)
        #expect(number.variables.json.isEmpty)
    }

    @Test(arguments: [
        "", "[]", "not json", #"{"processInstanceKey":"1"}"#, #"{"correlationKey":"c"}"#,
        #"{"correlationKey":"c","processInstanceKey":"-4"}"#, #"{"correlationKey":"c","processInstanceKey":"x"}"#,
        #"{"correlationKey":"c","processInstanceKey":"5","variables":[1]}"#,
    ])
    func malformedMessageRequestsAreRejected(_ body: String) {
        #expect(throws: DemoMessageRequest.Invalid.self) { try DemoMessageRequest(json: Array(body.utf8)) }
    }
}
