import Testing
import ZeebeClient

@Suite struct ConfigurationTests {
    @Test func defaultsToLocalTLSWithoutEnvironment() throws {
        let configuration = try ZeebeClientConfiguration.fromEnvironment([:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 26500)
        #expect(configuration.transportSecurity == .tls(caCertificatePath: nil))
        #expect(configuration.credentials == nil)
    }

    @Test func addressPrecedenceIsCamundaThenZeebeGrpcThenZeebe() throws {
        var environment = ["ZEEBE_ADDRESS": "a:1", "ZEEBE_GRPC_ADDRESS": "b:2", "CAMUNDA_GRPC_ADDRESS": "c:3"]
        #expect(try ZeebeClientConfiguration.fromEnvironment(environment).host == "c")
        environment["CAMUNDA_GRPC_ADDRESS"] = nil
        #expect(try ZeebeClientConfiguration.fromEnvironment(environment).port == 2)
        environment["ZEEBE_GRPC_ADDRESS"] = nil
        let last = try ZeebeClientConfiguration.fromEnvironment(environment)
        #expect(last.host == "a" && last.port == 1)
    }

    @Test func schemeAndInsecureFlagPickTransportSecurity() throws {
        let plain = try ZeebeClientConfiguration.fromEnvironment(["CAMUNDA_GRPC_ADDRESS": "http://gw:26500"])
        #expect(plain.transportSecurity == .plaintext)
        let secure = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_GRPC_ADDRESS": "grpcs://cluster.bru-2.zeebe.camunda.io",
            "ZEEBE_CA_CERTIFICATE_PATH": "/ca.pem",
        ])
        #expect(secure.port == 443)
        #expect(secure.transportSecurity == .tls(caCertificatePath: "/ca.pem"))
        let insecure = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_ADDRESS": "gw:26500", "ZEEBE_INSECURE_CONNECTION": "true",
        ])
        #expect(insecure.transportSecurity == .plaintext)
        let ipv6 = try ZeebeClientConfiguration.fromEnvironment(["ZEEBE_ADDRESS": "[::1]:9000"])
        #expect(ipv6.host == "::1" && ipv6.port == 9000)
    }

    @Test func keepAliveAndTokenRequestTimeoutAreMillisecondsOrDurations() throws {
        #expect(try ZeebeClientConfiguration.fromEnvironment([:]).keepAlive == .seconds(45))
        let plain = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_KEEP_ALIVE": "60000", "ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "secret",
            "ZEEBE_AUTH_REQUEST_TIMEOUT": "2500",
        ])
        #expect(plain.keepAlive == .seconds(60))
        #expect(plain.credentials?.requestTimeout == .milliseconds(2500))
        let units = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_KEEP_ALIVE": "2m", "ZEEBE_KEEP_ALIVE": "1", "CAMUNDA_CLIENT_ID": "id",
            "CAMUNDA_CLIENT_SECRET": "secret", "CAMUNDA_AUTH_REQUEST_TIMEOUT": "5s",
        ])
        #expect(units.keepAlive == .seconds(120))
        #expect(units.credentials?.requestTimeout == .seconds(5))
        for bad in ["0", "-5", "soon", "1.5s", "99999999999999999999"] {
            #expect(throws: ZeebeError.self, "\(bad)") {
                try ZeebeClientConfiguration.fromEnvironment(["ZEEBE_KEEP_ALIVE": bad])
            }
        }
    }

    @Test func oauthVariablesPreferCamundaForms() throws {
        let configuration = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_ADDRESS": "abc.bru-2.zeebe.camunda.io:443",
            "ZEEBE_CLIENT_ID": "zeebe-id",
            "CAMUNDA_CLIENT_ID": "camunda-id",
            "ZEEBE_CLIENT_SECRET": "zeebe-secret",
            "CAMUNDA_OAUTH_URL": "https://login.example/oauth/token",
            "ZEEBE_TOKEN_SCOPE": "scope-1",
        ])
        let credentials = try #require(configuration.credentials)
        #expect(credentials.clientId == "camunda-id")
        #expect(credentials.clientSecret == "zeebe-secret")
        #expect(credentials.authorizationServerURL == "https://login.example/oauth/token")
        #expect(credentials.audience == "abc.bru-2.zeebe.camunda.io")
        #expect(credentials.scope == "scope-1")
        let explicit = try ZeebeClientConfiguration.fromEnvironment([
            "ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "s", "ZEEBE_TOKEN_AUDIENCE": "zeebe.camunda.io",
            "ZEEBE_AUTHORIZATION_SERVER_URL": "https://auth.example/token",
        ])
        #expect(explicit.credentials?.audience == "zeebe.camunda.io")
        #expect(explicit.credentials?.authorizationServerURL == "https://auth.example/token")
    }

    @Test func saasClusterIdBuildsTheAddress() throws {
        let configuration = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_CLUSTER_ID": "abc", "CAMUNDA_CLUSTER_REGION": "dsm-1",
        ])
        #expect(configuration.host == "abc.dsm-1.zeebe.camunda.io")
        #expect(configuration.port == 443)
    }

    @Test func rejectsBadInput() {
        for environment in [
            ["ZEEBE_ADDRESS": "gw:notaport"],
            ["ZEEBE_ADDRESS": "gw:70000"],
            ["ZEEBE_ADDRESS": "ftp://gw:1"],
            ["ZEEBE_ADDRESS": ":26500"],
            ["ZEEBE_CLIENT_ID": "only-id"],
        ] {
            #expect {
                _ = try ZeebeClientConfiguration.fromEnvironment(environment)
            } throws: { error in
                (error as? ZeebeError)?.code == .invalidConfiguration
            }
        }
    }
}

@Suite struct VariablesTests {
    struct Order: Codable, Equatable {
        var orderId: String
        var total: Double
    }

    @Test func codableRoundTrip() throws {
        let variables = try ZeebeVariables(Order(orderId: "o-1", total: 9.5))
        #expect(variables.json == #"{"orderId":"o-1","total":9.5}"#)
        #expect(try variables.decode(Order.self) == Order(orderId: "o-1", total: 9.5))
    }

    @Test func rawJSONMustBeAnObject() throws {
        #expect(try ZeebeVariables(json: "  ").json == "")
        #expect(try ZeebeVariables(json: #"{"a":1}"#).json == #"{"a":1}"#)
        for bad in ["[1,2]", "42", "{not json", #""text""#] {
            #expect {
                _ = try ZeebeVariables(json: bad)
            } throws: { error in
                (error as? ZeebeError)?.code == .invalidVariables
            }
        }
        #expect(throws: ZeebeError.self) { _ = try ZeebeVariables([1, 2, 3]) }
    }

    @Test func decodingMismatchIsAClearError() throws {
        let variables = try ZeebeVariables(json: #"{"orderId":1}"#)
        #expect {
            _ = try variables.decode(Order.self)
        } throws: { error in
            (error as? ZeebeError)?.code == .invalidVariables
        }
        #expect(try ZeebeVariables.empty.decode([String: Int].self) == [:])
    }

    @Test func errorsSayWhichAreRetryable() {
        #expect(ZeebeError(code: .resourceExhausted, message: "").isRetryable)
        #expect(ZeebeError(code: .unavailable, message: "").isRetryable)
        #expect(!ZeebeError(code: .notFound, message: "").isRetryable)
        #expect(!ZeebeError(code: .deadlineExceeded, message: "").isRetryable)
    }
}
