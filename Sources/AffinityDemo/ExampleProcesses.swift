import ZeebeClient

/// The BPMN processes affinity-demo deploys at start; the same text as `examples/*.bpmn` (a test
/// checks that they match).
public enum ExampleProcesses {
    /// `order-process`: `demo-prepare` (run by affinity-demo itself), then `publish-outcome`.
    public static let orderProcessID = "order-process"
    /// `chat-process`: publishes a first outcome (the greeting), then for every `chat-message`
    /// (correlation key `chatId`) publishes one outcome and waits for the next message.
    public static let chatProcessID = "chat-process"
    /// The chat process's message name.
    public static let chatMessageName = "chat-message"
    /// The task type of the order process's first task, serviced by affinity-demo.
    public static let prepareTaskType = "demo-prepare"

    /// `examples/order-process.bpmn`.
    public static let orderProcessBPMN = #"""
<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
    id="order-process-definitions" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="order-process" name="Order (affinity demo)" isExecutable="true">
    <bpmn:startEvent id="order-received" />
    <bpmn:sequenceFlow id="to-prepare" sourceRef="order-received" targetRef="prepare-order" />
    <bpmn:serviceTask id="prepare-order" name="Prepare order">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="demo-prepare" retries="3" />
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="to-publish" sourceRef="prepare-order" targetRef="publish-outcome" />
    <bpmn:serviceTask id="publish-outcome" name="Publish outcome">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="publish-outcome" retries="3" />
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="to-end" sourceRef="publish-outcome" targetRef="order-done" />
    <bpmn:endEvent id="order-done" />
  </bpmn:process>
</bpmn:definitions>
"""#

    /// `examples/chat-process.bpmn`.
    public static let chatProcessBPMN = #"""
<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
    id="chat-process-definitions" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="chat-process" name="Chat (affinity demo)" isExecutable="true">
    <bpmn:startEvent id="chat-started" />
    <bpmn:sequenceFlow id="to-greeting" sourceRef="chat-started" targetRef="publish-answer" />
    <bpmn:intermediateCatchEvent id="wait-for-message" name="Chat message">
      <bpmn:messageEventDefinition messageRef="chat-message" />
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="to-answer" sourceRef="wait-for-message" targetRef="publish-answer" />
    <bpmn:serviceTask id="publish-answer" name="Publish answer">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="publish-outcome" retries="3" />
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="to-wait" sourceRef="publish-answer" targetRef="wait-for-message" />
  </bpmn:process>
  <bpmn:message id="chat-message" name="chat-message">
    <bpmn:extensionElements>
      <zeebe:subscription correlationKey="=chatId" />
    </bpmn:extensionElements>
  </bpmn:message>
</bpmn:definitions>
"""#

    /// Both files, as deployment resources.
    public static var resources: [DeploymentResource] {
        [
            DeploymentResource(name: "order-process.bpmn", content: Array(orderProcessBPMN.utf8)),
            DeploymentResource(name: "chat-process.bpmn", content: Array(chatProcessBPMN.utf8)),
        ]
    }
}
