import AffinityTestSupport
import Foundation
import GRPCCore
import Testing
import ZeebeClient
import ZeebeTestGateway

@Suite struct ClientErrorPathTests {
    @Test func resourceExhaustedIsRetriedForIdempotentCalls() async throws {
        try await withGatewayAndClient { client, gateway in
            gateway.knobs.failNextCalls(3, with: .resourceExhausted, methods: ["Topology"])
            let start = ContinuousClock.now
            _ = try await client.topology()
            #expect(gateway.knobs.callCount("Topology") == 4)
            // Three back-off sleeps of at least 9, 14 and 23 ms (10 ms minimum, ×1.6, −10 %).
            #expect(ContinuousClock.now - start >= .milliseconds(45))

            gateway.knobs.failNextCalls(2, with: .unavailable, methods: ["CompleteJob"])
            await #expect {
                try await client.completeJob(99)
            } throws: { ($0 as? ZeebeError)?.code == .notFound }
            #expect(gateway.knobs.callCount("CompleteJob") == 3)
        }
    }

    @Test func retriesStopAfterMaxAttempts() async throws {
        try await withGatewayAndClient(client: { configuration, _ in configuration.maxAttempts = 3 }) {
            client, gateway in
            gateway.knobs.failNextCalls(10, with: .resourceExhausted, methods: ["Topology"])
            await #expect {
                _ = try await client.topology()
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .resourceExhausted && error?.isRetryable == true
            }
            #expect(gateway.knobs.callCount("Topology") == 3)
        }
    }

    @Test func nonIdempotentCallsAreNotRetried() async throws {
        try await withGatewayAndClient { client, gateway in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            // UNAVAILABLE may come after the broker applied the command (back-pressure retries: BackPressureTests)
            gateway.knobs.failNextCalls(1, with: .unavailable, methods: ["CreateProcessInstance"])
            await #expect {
                _ = try await client.createProcessInstance(bpmnProcessId: "p")
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .unavailable && error?.message == "injected by the test gateway"
            }
            #expect(gateway.knobs.callCount("CreateProcessInstance") == 1)
            gateway.knobs.failNextCalls(1, with: .unavailable, methods: ["PublishMessage"])
            await #expect(throws: ZeebeError.self) {
                try await client.publishMessage(name: "m", correlationKey: "k")
            }
            #expect(gateway.knobs.callCount("PublishMessage") == 1)
            // With a message id the publish is idempotent, so it is retried.
            gateway.knobs.failNextCalls(1, with: .unavailable, methods: ["PublishMessage"])
            try await client.publishMessage(name: "m", correlationKey: "k", messageId: "id-1")
            #expect(gateway.knobs.callCount("PublishMessage") == 3)
        }
    }

    @Test func gatewayTimeoutOfCreateWithResultIsDeadlineExceeded() async throws {
        try await withGatewayAndClient { client, _ in
            _ = try await client.deployResource(
                name: "p.bpmn", content: bpmnDocument(processId: "p", steps: [.task("t")]))
            let start = ContinuousClock.now
            await #expect {
                _ = try await client.createProcessInstanceWithResult(
                    bpmnProcessId: "p", requestTimeout: .milliseconds(300))
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .deadlineExceeded && error?.message == "Time out between gateway and broker"
            }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func clientDeadlineExceeded() async throws {
        try await withGatewayAndClient(client: { configuration, _ in
            configuration.defaultCallTimeout = .milliseconds(200)
        }) { client, gateway in
            gateway.knobs.delayCalls(by: .seconds(2))
            let start = ContinuousClock.now
            await #expect {
                _ = try await client.topology()
            } throws: { ($0 as? ZeebeError)?.code == .deadlineExceeded }
            #expect(ContinuousClock.now - start < .seconds(2))
            gateway.knobs.delayCalls(by: .zero)
        }
    }

    @Test func unreachableGatewayIsUnavailable() async throws {
        var configuration = ZeebeClientConfiguration(host: "127.0.0.1", port: 1)
        configuration.maxAttempts = 2
        configuration.defaultCallTimeout = .seconds(5)
        _ = try await withZeebeClient(configuration: configuration) { client in
            await #expect {
                _ = try await client.topology()
            } throws: { error in
                let error = error as? ZeebeError
                return error?.code == .unavailable && error?.isRetryable == true
            }
        }
    }
}

@Suite struct AuthenticationTests {
    @Test func basicCredentialsAreSentOnEveryCallAndWrongOnesAreRefused() async throws {
        var gatewayConfiguration = TestGatewayConfiguration()
        gatewayConfiguration.basicAuth = (username: "demo", password: "p@ss:word")
        try await withGatewayAndClient(
            gateway: gatewayConfiguration,
            client: { configuration, _ in
                configuration.basicAuth = BasicAuthCredentials(username: "demo", password: "p@ss:word")
            }
        ) { client, _ in
            let topology = try await client.topology()
            #expect(topology.clusterSize == 1)
        }
        _ = try await withGatewayAndClient(
            gateway: gatewayConfiguration,
            client: { configuration, _ in
                configuration.basicAuth = BasicAuthCredentials(username: "demo", password: "wrong")
                configuration.maxAttempts = 1
            }
        ) { client, _ in
            await #expect {
                _ = try await client.topology()
            } throws: { error in
                (error as? ZeebeError)?.code == .unauthenticated
            }
        }
    }

    @Test func basicCredentialsComeFromTheCamundaVariables() throws {
        let configuration = try ZeebeClientConfiguration.fromEnvironment([
            "CAMUNDA_BASIC_AUTH_USERNAME": "demo", "CAMUNDA_BASIC_AUTH_PASSWORD": "demo",
        ])
        #expect(configuration.basicAuth == BasicAuthCredentials(username: "demo", password: "demo"))
        #expect(configuration.basicAuth?.authorizationHeader == "Basic ZGVtbzpkZW1v")
        #expect(throws: ZeebeError.self) {
            try ZeebeClientConfiguration.fromEnvironment(["CAMUNDA_BASIC_AUTH_USERNAME": "demo"])
        }
        #expect(throws: ZeebeError.self) {
            try ZeebeClientConfiguration.fromEnvironment([
                "CAMUNDA_BASIC_AUTH_USERNAME": "demo", "CAMUNDA_BASIC_AUTH_PASSWORD": "demo",
                "ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "secret",
            ])
        }
    }

    @Test func tokenIsFetchedCachedAndRefreshedOnUnauthenticated() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = issuer
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.credentials = OAuthCredentials(
                        clientId: "worker",
                        clientSecret: "s3cret",
                        authorizationServerURL: oauth.url,
                        audience: "zeebe-api",
                        scope: "zeebe"
                    )
                }
            ) { client, gateway in
                _ = try await client.topology()
                _ = try await client.topology()
                #expect(oauth.requestCount == 1)
                let form = try #require(oauth.receivedForms.first)
                #expect(form["grant_type"] == "client_credentials")
                #expect(form["client_id"] == "worker")
                #expect(form["audience"] == "zeebe-api")
                #expect(form["scope"] == "zeebe")

                issuer.revokeAllTokens()
                _ = try await client.topology()
                #expect(oauth.requestCount == 2)
                // The rejected call plus the retried one.
                #expect(gateway.knobs.callCount("Topology") == 4)
            }
        }
    }

    @Test func concurrentCallsShareOneTokenRequest() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = issuer
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.credentials = OAuthCredentials(
                        clientId: "worker", clientSecret: "s3cret", authorizationServerURL: oauth.url)
                }
            ) { client, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask { _ = try await client.topology() }
                    }
                    try await group.waitForAll()
                }
                #expect(oauth.requestCount == 1)
            }
        }
    }

    @Test func refreshesOnlyOnce() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = TestTokenIssuer(clientId: "other", clientSecret: "x")
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.credentials = OAuthCredentials(
                        clientId: "worker", clientSecret: "s3cret", authorizationServerURL: oauth.url)
                }
            ) { client, _ in
                await #expect {
                    _ = try await client.topology()
                } throws: { ($0 as? ZeebeError)?.code == .unauthenticated }
                #expect(oauth.requestCount == 2)
            }
        }
    }

    @Test func expiringTokensAreRefreshedBeforeExpiry() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret", tokenLifetime: .seconds(1))
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = issuer
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.credentials = OAuthCredentials(
                        clientId: "worker", clientSecret: "s3cret", authorizationServerURL: oauth.url)
                }
            ) { client, gateway in
                _ = try await client.topology()
                try await Task.sleep(for: .milliseconds(700))
                _ = try await client.topology()
                #expect(oauth.requestCount == 2)
                // No call was rejected: the token was replaced before it expired.
                #expect(gateway.knobs.callCount("Topology") == 2)
            }
        }
    }

    @Test func wrongClientSecretIsAnAuthenticationFailure() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTestOAuthServer(issuer: issuer) { oauth in
            try await withGatewayAndClient(client: { configuration, _ in
                configuration.credentials = OAuthCredentials(
                    clientId: "worker", clientSecret: "wrong", authorizationServerURL: oauth.url)
            }) { client, gateway in
                await #expect {
                    _ = try await client.topology()
                } throws: { error in
                    let error = error as? ZeebeError
                    return error?.code == .authenticationFailed && error?.message.contains("401") == true
                }
                #expect(gateway.knobs.callCount("Topology") == 0)
            }
        }
    }
}

@Suite struct TLSTests {
    @Test func tlsWithACustomCA() async throws {
        let authority = try TestCertificateAuthority()
        try await withTemporaryDirectory { directory in
            let caPath = directory.appendingPathComponent("ca.pem").path
            try authority.caCertificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tls = (authority.serverCertificatePEM, authority.serverPrivateKeyPEM)
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.transportSecurity = .tls(caCertificatePath: caPath)
                    // The certificate names localhost; the connection goes to 127.0.0.1.
                    configuration.overrideAuthority = "localhost"
                }
            ) { client, _ in
                let topology = try await client.topology()
                #expect(topology.clusterSize == 1)
            }
            // Straight to the address, no override: the certificate's IP SAN 127.0.0.1 is checked, and no
            // address is sent as the TLS server name (which the handshake would refuse).
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.transportSecurity = .tls(caCertificatePath: caPath)
                    configuration.overrideAuthority = nil
                    #expect(configuration.host == "127.0.0.1")
                }
            ) { client, _ in
                let topology = try await client.topology()
                #expect(topology.clusterSize == 1)
            }
            // Without the CA, the gateway's certificate is not trusted.
            _ = try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in
                    configuration.transportSecurity = .tls(caCertificatePath: nil)
                    configuration.overrideAuthority = "localhost"
                    configuration.maxAttempts = 1
                    configuration.defaultCallTimeout = .seconds(5)
                }
            ) { client, _ in
                await #expect(throws: ZeebeError.self) { _ = try await client.topology() }
            }
        }
    }
}
