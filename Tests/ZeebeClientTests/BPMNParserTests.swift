import Foundation
import Testing
import ZeebeTestGateway

@Suite struct BPMNParserTests {
    @Test func parsesTasksMessagesAndFlows() throws {
        let processes = try BPMNParser.parse(
            bpmnDocument(
                processId: "order", steps: [.task("reserve", retries: 5), .message("paid", correlationKey: "=orderId")])
        )
        let process = try #require(processes.first)
        #expect(process.id == "order")
        #expect(process.startEventId == "start")
        #expect(process.elements["step0"] == .serviceTask(jobType: "reserve", retries: 5, headers: ["step": "0"]))
        #expect(process.elements["step1"] == .messageCatch(messageName: "paid", correlationKeyVariable: "orderId"))
        #expect(process.next["start"] == "step0")
        #expect(process.next["step1"] == "end")
    }

    @Test func rejectsWhatTheEngineCannotRun() {
        let cases: [[UInt8]] = [
            Array("<not xml".utf8),
            Array(
                String(decoding: bpmnDocument(processId: "p", steps: [.task("t")]), as: UTF8.self)
                    .replacingOccurrences(of: "bpmn:serviceTask", with: "bpmn:userTask").utf8
            ),
            bpmnDocument(processId: "p", steps: [.message("m", correlationKey: "=a + b")]),
            bpmnDocument(processId: "p", steps: [.message("m", correlationKey: "orderId")]),
            Array(
                String(decoding: bpmnDocument(processId: "p", steps: [.task("t")]), as: UTF8.self)
                    .replacingOccurrences(of: #"type="t""#, with: "").utf8
            ),
        ]
        for document in cases {
            #expect(throws: BPMNParser.Failure.self) { _ = try BPMNParser.parse(document) }
        }
    }
}
