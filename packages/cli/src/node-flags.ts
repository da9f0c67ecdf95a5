/**
 * Node/V8 flags every `flotilla server` process runs with: `flotilla start` passes them to the
 * nodes it spawns, the Dockerfile's ENTRYPOINT and deploy/k8s-entrypoint.sh name them, and the
 * test cluster helper uses them, so tests and benchmarks run the server as users do.
 *
 * --no-memory-reducer: V8's memory reducer starts heap-shrinking collections when a process
 * allocates little on the JS heap, which is what a broker looks like: it moves large
 * Buffers (external memory) and allocates few objects. Under replication load two of three
 * brokers ran about 20 incremental mark-compacts a second in it (flag
 * kGCCallbackScheduleIdleGarbageCollection), about a fifth of their time; without it, 1-9
 * per 10 s, and the same 100 B acks=all RF 3 load went from 0.68-0.79M to 1.17-1.60M
 * records/s (docs/PERFORMANCE.md). The heap is still collected as usual; it is only not
 * shrunk eagerly. It must be given on the command line (V8 sets the reducer up at start, and
 * Node does not take it in NODE_OPTIONS).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--no-memory-reducer"];
