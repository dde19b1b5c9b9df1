public import AffinityClient
public import ZeebeClient

/// The settings of the demo front-end (the `affinity-demo` executable's flags).
public struct DemoConfiguration: Sendable {
    /// The affinity service URLs and the client token.
    public var affinity: AffinityConnectionConfiguration
    /// The Zeebe gateway (from the Camunda environment variables in the executable).
    public var zeebe: ZeebeClientConfiguration
    /// The interface to listen on ("0.0.0.0").
    public var host: String = "0.0.0.0"
    /// The HTTP port (8082; 0 picks a free one).
    public var port: Int = 8082
    /// How long a request waits for its outcome (30 s).
    public var timeout: Duration = .seconds(30)
    /// Deploy ``ExampleProcesses`` at start (true).
    public var deployExamples: Bool = true
    /// Run the job worker for the order process's first task, `demo-prepare` (true).
    public var runPrepareWorker: Bool = true
    /// Largest request body in bytes (1 MiB).
    public var maxBodyBytes: Int = 1 << 20

    /// Creates a configuration with the defaults.
    public init(affinity: AffinityConnectionConfiguration, zeebe: ZeebeClientConfiguration) {
        self.affinity = affinity
        self.zeebe = zeebe
    }
}
