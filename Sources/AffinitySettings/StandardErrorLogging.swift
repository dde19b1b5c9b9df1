public import Logging

/// The logging of the worker and demo executables: text lines on standard error at one level.
public enum StandardErrorLogging {
    /// Bootstraps swift-log once for the process and returns the program's logger.
    public static func bootstrap(label: String, level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
