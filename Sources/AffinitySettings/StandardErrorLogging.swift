public import Logging

/// The logging of the executables: one handler per record on standard error, as text lines or, with `json`,
/// as one JSON object per line (``JSONLogHandler``, for log collectors), at one level.
public enum StandardErrorLogging {
    /// Bootstraps swift-log once for the process and returns the program's logger.
    public static func bootstrap(label: String, level: Logger.Level, json: Bool = false) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
