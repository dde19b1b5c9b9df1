import Testing
import ZeebeClient

/// The environment variables of the official clients and `@camunda8/sdk` (docs/ZEEBE.md has the table).
@Suite struct EnvironmentConfigurationTests {
    /// `CAMUNDA_CREDENTIALS_SCOPES` (in the SaaS credentials file) lists the components a credential is
    /// valid for, e.g. `Zeebe,Tasklist`: sending it as the OAuth `scope` makes the token request fail.
    @Test func credentialsScopesAreNotAnOAuthScope() throws {
        let saas = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "s", "CAMUNDA_CREDENTIALS_SCOPES": "Zeebe,Tasklist",
        ])
        #expect(saas.credentials?.scope == nil)
        let scoped = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "s", "CAMUNDA_CREDENTIALS_SCOPES": "Zeebe",
            "ZEEBE_TOKEN_SCOPE": "zeebe-scope", "CAMUNDA_TOKEN_SCOPE": "camunda-scope",
        ])
        #expect(scoped.credentials?.scope == "camunda-scope")
    }

    @Test func saasClusterIdDefaultsTheAudienceToZeebeCamundaIo() throws {
        let configuration = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_CLUSTER_ID": "abc", "CAMUNDA_CLIENT_ID": "id", "CAMUNDA_CLIENT_SECRET": "s",
        ])
        #expect(configuration.host == "abc.bru-2.zeebe.camunda.io")
        #expect(configuration.credentials?.audience == "zeebe.camunda.io")
        let explicit = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_CLUSTER_ID": "abc", "CAMUNDA_CLIENT_ID": "id", "CAMUNDA_CLIENT_SECRET": "s",
            "CAMUNDA_TOKEN_AUDIENCE": "custom",
        ])
        #expect(explicit.credentials?.audience == "custom")
    }

    @Test func camundaSdkVariablesAreRead() throws {
        let plain = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_GRPC_ADDRESS": "gw:26500", "CAMUNDA_SECURE_CONNECTION": "false",
        ])
        #expect(plain.transportSecurity == .plaintext)
        let custom = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_GRPC_ADDRESS": "gw:26500", "CAMUNDA_SECURE_CONNECTION": "true",
            "CAMUNDA_CUSTOM_ROOT_CERT_PATH": "/certs/ca.pem", "CAMUNDA_CLIENT_ID": "id", "CAMUNDA_CLIENT_SECRET": "s",
        ])
        #expect(custom.transportSecurity == .tls(caCertificatePath: "/certs/ca.pem"))
        #expect(custom.credentials?.caCertificatePath == "/certs/ca.pem")
        let none = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_AUTH_STRATEGY": "none", "CAMUNDA_CLIENT_ID": "id", "CAMUNDA_CLIENT_SECRET": "s",
        ])
        #expect(none.credentials == nil && none.basicAuth == nil)
        let basic = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_AUTH_STRATEGY": "BASIC", "CAMUNDA_CLIENT_ID": "id", "CAMUNDA_CLIENT_SECRET": "s",
            "CAMUNDA_BASIC_AUTH_USERNAME": "demo", "CAMUNDA_BASIC_AUTH_PASSWORD": "pw",
        ])
        #expect(basic.credentials == nil && basic.basicAuth?.username == "demo")
        for environment in [
            ["CAMUNDA_AUTH_STRATEGY": "OAUTH"],
            ["CAMUNDA_AUTH_STRATEGY": "BASIC"],
            ["CAMUNDA_AUTH_STRATEGY": "KERBEROS"],
        ] {
            #expect("\(environment)") {
                _ = try ZeebeClientConfiguration.fromEnvironment(environment)
            } throws: { ($0 as? ZeebeError)?.code == .invalidConfiguration }
        }
    }

    @Test func maxMessageSizeDefaultsToFiveMegabytes() throws {
        #expect(try ZeebeClientConfiguration.fromEnvironment([:]).maxInboundMessageSize == 5 * 1024 * 1024)
        let sizes = ["ZEEBE_MAX_MESSAGE_SIZE": "8MB"]
        #expect(try ZeebeClientConfiguration.fromEnvironment(sizes).maxInboundMessageSize == 8 * 1024 * 1024)
        #expect(
            try ZeebeClientConfiguration.fromEnvironment(["CAMUNDA_MAX_MESSAGE_SIZE": "1048576"]).maxInboundMessageSize
                == 1_048_576)
        for bad in ["0", "big", "-1MB", "5.5MB"] {
            #expect(throws: ZeebeError.self, "\(bad)") {
                try ZeebeClientConfiguration.fromEnvironment(["ZEEBE_MAX_MESSAGE_SIZE": bad])
            }
        }
    }

    @Test func defaultTenantComesFromTheCamundaVariables() throws {
        #expect(try ZeebeClientConfiguration.fromEnvironment([:]).defaultTenantId == "<default>")
        #expect(
            try ZeebeClientConfiguration.fromEnvironment(["CAMUNDA_TENANT_ID": "t1"]).defaultTenantId == "t1")
        #expect(
            try ZeebeClientConfiguration.fromEnvironment([
                "CAMUNDA_TENANT_ID": "t1", "CAMUNDA_DEFAULT_TENANT_ID": "t2",
            ]).defaultTenantId == "t2")
    }
}
