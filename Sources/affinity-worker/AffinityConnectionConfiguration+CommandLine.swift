import AffinityClient
import AffinitySettings

extension AffinityConnectionConfiguration {
    /// The connection the executables' `--affinity-url` (repeatable; `AFFINITY_URL`, comma-separated) and
    /// `--token-file` (`AFFINITY_TOKEN_FILE`) describe. The token file is read once now, so that a
    /// missing or empty file stops the program at start with one line.
    ///
    /// - Throws: ``SettingsError`` when no URL is given or the token file cannot be used.
    static func fromCommandLine(
        urls flags: [String], tokenFile: String?, settings: CommandLineSettings
    ) throws(SettingsError) -> AffinityConnectionConfiguration {
        let urls = settings.list(flags, variable: "AFFINITY_URL")
        guard !urls.isEmpty else { throw SettingsError("--affinity-url or AFFINITY_URL is required") }
        let token = try settings.readableFile(tokenFile, name: "token-file", variable: "AFFINITY_TOKEN_FILE")
            .map { BearerToken.file(path: $0) }
        if let token {
            do {
                _ = try token.resolve()
            } catch {
                throw SettingsError(error.message)
            }
        }
        return AffinityConnectionConfiguration(urls: urls, token: token)
    }
}
