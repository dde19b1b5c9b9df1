import Testing

/// The multi-process cluster tests. Each starts a redis-server and up to three affinity-server processes;
/// they run one at a time so that they do not starve each other (and the rest of the suite) on a small
/// machine.
@Suite("Cluster (separate processes)", .serialized)
struct ClusterTests {}
