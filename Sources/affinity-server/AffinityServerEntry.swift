import AffinityServer
import AffinitySettings
import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses the command line and runs the server; any usage error is reported as ONE line on
/// standard error (ArgumentParser's default adds the usage text), `--help` prints the help.
@main
enum AffinityServerEntry {
    static func main() async {
        let command: AffinityServerCommand
        do {
            command = try AffinityServerCommand.parse()
        } catch {
            if AffinityServerCommand.exitCode(for: error) == .success {
                AffinityServerCommand.exit(withError: error)
            }
            let message =
                AffinityServerCommand.message(for: error)
                .split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            StandardError.write("affinity-server: \(message) (see --help)\n")
            exit(2)
        }
        let threads: Int?
        do {
            threads = try command.resolveEventLoopThreads()
        } catch {
            StandardError.write("affinity-server: \(error)\n")
            exit(2)
        }
        let eventLoops = EventLoopSetup.install(threads: threads)
        do {
            try await command.run(eventLoops: eventLoops)
        } catch {
            StandardError.write("affinity-server: \(error)\n")
            exit(1)
        }
    }
}
