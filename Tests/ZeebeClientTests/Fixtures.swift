import AffinityTestSupport
import Foundation
import Logging
import ZeebeClient
import ZeebeTestGateway

/// One step of a linear test process.
enum ProcessStep {
    case task(String, retries: Int = 3)
    case message(String, correlationKey: String)
}

/// A BPMN document as a modeler writes it: namespaces, diagram section and all.
func bpmnDocument(processId: String, steps: [ProcessStep]) -> [UInt8] {
    var elements = [#"<bpmn:startEvent id="start" />"#]
    var messages: [String] = []
    var ids = ["start"]
    for (index, step) in steps.enumerated() {
        let id = "step\(index)"
        ids.append(id)
        switch step {
        case .task(let type, let retries):
            elements.append(
                """
                <bpmn:serviceTask id="\(id)" name="\(type)">
                  <bpmn:extensionElements>
                    <zeebe:taskDefinition type="\(type)" retries="\(retries)" />
                    <zeebe:taskHeaders><zeebe:header key="step" value="\(index)" /></zeebe:taskHeaders>
                  </bpmn:extensionElements>
                </bpmn:serviceTask>
                """
            )
        case .message(let name, let correlationKey):
            elements.append(
                """
                <bpmn:intermediateCatchEvent id="\(id)">
                  <bpmn:messageEventDefinition messageRef="msg\(index)" />
                </bpmn:intermediateCatchEvent>
                """
            )
            messages.append(
                """
                <bpmn:message id="msg\(index)" name="\(name)">
                  <bpmn:extensionElements><zeebe:subscription correlationKey="\(correlationKey)" /></bpmn:extensionElements>
                </bpmn:message>
                """
            )
        }
    }
    elements.append(#"<bpmn:endEvent id="end" />"#)
    ids.append("end")
    for index in 0..<(ids.count - 1) {
        elements.append(
            #"<bpmn:sequenceFlow id="flow\#(index)" sourceRef="\#(ids[index])" targetRef="\#(ids[index + 1])" />"#)
    }
    let xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
            xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
            xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
          <bpmn:process id="\(processId)" isExecutable="true">
            \(elements.joined(separator: "\n    "))
          </bpmn:process>
          \(messages.joined(separator: "\n  "))
          <bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" bpmnElement="\(processId)" /></bpmndi:BPMNDiagram>
        </bpmn:definitions>
        """
    return Array(xml.utf8)
}

/// A test gateway plus a client connected to it; both stopped afterwards.
func withGatewayAndClient<Result: Sendable>(
    gateway gatewayConfiguration: TestGatewayConfiguration = TestGatewayConfiguration(),
    client configure: @Sendable (inout ZeebeClientConfiguration, TestGateway) -> Void = { _, _ in },
    _ body: (ZeebeClient, TestGateway) async throws -> Result
) async throws -> Result {
    try await withTestGateway(configuration: gatewayConfiguration) { gateway in
        var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: gateway.port)
        configuration.retryBackoff = ExponentialBackoff(
            minimum: .milliseconds(10),
            maximum: .milliseconds(100),
            multiplier: 1.6,
            jitter: 0.1
        )
        configure(&configuration, gateway)
        return try await withZeebeClient(configuration: configuration) { client in
            try await body(client, gateway)
        }
    }
}

/// Waits until `condition` holds, polling every 10 ms, for at most `timeout`.
func eventually(
    timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < timeout {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
