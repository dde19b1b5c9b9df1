import Hummingbird
import NIOCore

/// The request context of a replica's HTTP routes: Hummingbird's basics plus the connection's channel,
/// so that a long poll notices when its client goes away.
struct AffinityRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The HTTP connection the request came in on.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
