import AffinityTestSupport
import Foundation
import Testing
import ZeebeClient
import ZeebeTestGateway

/// The token endpoint's failures and TLS, against the test OAuth server and the test gateway.
@Suite struct OAuthTests {
    static func credentials(_ oauth: TestOAuthServer) -> OAuthCredentials {
        OAuthCredentials(clientId: "worker", clientSecret: "s3cret", authorizationServerURL: oauth.url)
    }

    /// An identity provider that answers 503 for a moment does not fail the call: the token request is
    /// retried with back-off.
    @Test func tokenRequestsAreRetriedWithBackoff() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = issuer
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in configuration.credentials = Self.credentials(oauth) }
            ) { client, _ in
                oauth.failNextRequests(2)
                let start = ContinuousClock.now
                _ = try await client.topology()
                #expect(oauth.requestCount == 3)
                #expect(ContinuousClock.now - start >= .milliseconds(500))
            }
        }
    }

    /// A refresh ahead of expiry that fails keeps the token that is still valid; the next refresh works.
    @Test func failedRefreshKeepsTheTokenWhileItIsValid() async throws {
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret", tokenLifetime: .seconds(6))
        try await withTestOAuthServer(issuer: issuer) { oauth in
            var gatewayConfiguration = TestGatewayConfiguration()
            gatewayConfiguration.tokenIssuer = issuer
            try await withGatewayAndClient(
                gateway: gatewayConfiguration,
                client: { configuration, _ in configuration.credentials = Self.credentials(oauth) }
            ) { client, gateway in
                _ = try await client.topology()
                #expect(oauth.requestCount == 1)
                // 6 s tokens are refreshed after half their lifetime
                try await Task.sleep(for: .milliseconds(3200))
                oauth.failNextRequests(3)
                _ = try await client.topology()
                #expect(oauth.requestCount == 4)
                #expect(issuer.issuedCount == 1)
                #expect(gateway.knobs.callCount("Topology") == 2)
                // the refresh is tried again before the token expires, and now succeeds
                let refreshed = try await eventually(timeout: .seconds(20)) {
                    _ = try await client.topology()
                    return issuer.issuedCount == 2
                }
                #expect(refreshed)
            }
        }
    }

    /// The token endpoint's certificate is checked against the custom CA (`CAMUNDA_CUSTOM_ROOT_CERT_PATH`).
    @Test func tokenEndpointIsTrustedThroughTheCustomCA() async throws {
        let authority = try TestCertificateAuthority()
        let issuer = TestTokenIssuer(clientId: "worker", clientSecret: "s3cret")
        try await withTemporaryDirectory { directory in
            let caPath = directory.appendingPathComponent("ca.pem").path
            try authority.caCertificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)
            try await withTestOAuthServer(
                issuer: issuer, tls: (authority.serverCertificatePEM, authority.serverPrivateKeyPEM)
            ) { oauth in
                #expect(oauth.url.hasPrefix("https://"))
                var gatewayConfiguration = TestGatewayConfiguration()
                gatewayConfiguration.tokenIssuer = issuer
                var environment = [
                    "ZEEBE_CLIENT_ID": "worker", "ZEEBE_CLIENT_SECRET": "s3cret",
                    "ZEEBE_AUTHORIZATION_SERVER_URL": oauth.url, "CAMUNDA_CUSTOM_ROOT_CERT_PATH": caPath,
                    "CAMUNDA_SECURE_CONNECTION": "false",
                    // an untrusted endpoint is retried until the request timeout: keep the test short
                    "ZEEBE_AUTH_REQUEST_TIMEOUT": "2000",
                ]
                try await withTestGateway(configuration: gatewayConfiguration) { gateway in
                    environment["ZEEBE_ADDRESS"] = "127.0.0.1:\(gateway.port)"
                    let configuration = try ZeebeClientConfiguration.fromEnvironment(environment)
                    #expect(configuration.credentials?.caCertificatePath == caPath)
                    let topology = try await withZeebeClient(configuration: configuration) { try await $0.topology() }
                    #expect(topology.clusterSize == 1)
                    #expect(oauth.requestCount == 1)
                    // without the CA the endpoint is not trusted
                    var untrusting = configuration
                    untrusting.credentials?.caCertificatePath = nil
                    await #expect {
                        _ = try await withZeebeClient(configuration: untrusting) { try await $0.topology() }
                    } throws: { ($0 as? ZeebeError)?.code == .authenticationFailed }
                }
            }
        }
    }
}
