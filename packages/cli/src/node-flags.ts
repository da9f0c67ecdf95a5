/**
 * Node/V8 flags every `flotilla server` process runs with: `flotilla start` passes them to the
 * nodes it spawns, the Dockerfile's ENTRYPOINT and deploy/k8s-entrypoint.sh name them, and the
 * test cluster helper uses them, so tests and benchmarks run the server as users do.
 *
 * --no-memory-reducer: V8's memory reducer starts heap-shrinking collections when a process
 * allocates little on the JS heap, which is what a broker looks like: it moves large
 * Buffers (external memory) and allocates few objects. In slow runs under replication load
 * the brokers ran 150-220 incremental mark-compacts per 10 s, flagged
 * kGCCallbackScheduleIdleGarbageCollection, about a fifth of their time (0.6-0.8M records/s
 * against 1.1-1.6M in runs without them). With this flag 2 of 3 runs were free of them, without
 * it 0 of 2: it removes one trigger, not every one (docs/PERFORMANCE.md). The heap is still
 * collected as usual; it is only not shrunk eagerly. It must be given on the command line
 * (V8 sets the reducer up at start, and Node does not take it in NODE_OPTIONS).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--no-memory-reducer"];
