import Testing
import ZeebeClient

/// The whole product, each part its own process on loopback: the test gateway (`zeebe-test-gateway`),
/// a `redis-server`, three `affinity-server` replicas in cluster mode, two `affinity-worker`s and two
/// `affinity-demo` front-ends (see ``AffinityStack``).
///
/// The suites run one at a time: each starts up to nine processes, which is all a small machine takes.
@Suite("end to end (separate processes)", .serialized)
struct EndToEndTests {
    /// A process whose only task is `publish-outcome` (3 retries).
    static let publishOnlyProcess = [
        DeploymentResource(
            name: "publish-only.bpmn",
            content: Array(
                """
                <?xml version="1.0" encoding="UTF-8"?>
                <bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
                  <bpmn:process id="publish-only" isExecutable="true">
                    <bpmn:startEvent id="start" />
                    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="publish" />
                    <bpmn:serviceTask id="publish">
                      <bpmn:extensionElements><zeebe:taskDefinition type="publish-outcome" retries="3" /></bpmn:extensionElements>
                    </bpmn:serviceTask>
                    <bpmn:sequenceFlow id="f2" sourceRef="publish" targetRef="end" />
                    <bpmn:endEvent id="end" />
                  </bpmn:process>
                </bpmn:definitions>
                """.utf8))
    ]
}
