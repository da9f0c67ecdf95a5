/**
 * Node/V8 flags every `flotilla server` process runs with: `flotilla start` passes them to the
 * nodes it spawns, the Dockerfile's ENTRYPOINT and deploy/k8s-entrypoint.sh name them, and the
 * test cluster helper uses them, so tests and benchmarks run the server as users do. They must
 * be given on the command line (V8 sets its heap up at start, and Node does not take these in
 * NODE_OPTIONS).
 *
 * A broker moves large Buffers (external memory) and keeps a small JS heap (about 25 MiB live),
 * which V8's heuristics read as "collect often, keep the heap small":
 *
 * --heap-growing-percent=200: after a full collection V8 lets the old generation grow by a
 *   factor it derives from how fast it can collect. For a broker it picked about 1.15, so with
 *   25 MiB live every 4 MiB promoted started another incremental mark-compact: under
 *   replication load 3 to 9 a second per broker (`--trace-gc`: "finalize incremental marking
 *   via task", 29.5 -> 25.5 MB), each with its weak-callback pass, and once in that regime the
 *   brokers stayed there (the bench's late rows ran at half a fresh cluster's rate). A fixed
 *   factor of 3 lets the heap grow to about 75 MiB between collections. The same 10 s
 *   produce jobs on one cluster (100 B, acks=all, RF 3), interleaved runs: about 1,550 mark-
 *   compacts per run of six jobs without it and about 23 with it; the last two jobs 551k-650k
 *   records/s without it, 1.31M-1.38M with it; brokers' RSS 205-230 MiB without it, 232-263
 *   MiB with it (docs/PERFORMANCE.md, "What the data-path work changed").
 * --no-memory-reducer: the memory reducer starts heap-shrinking collections when a process
 *   allocates little on the JS heap, which is what a broker looks like between bursts.
 *
 * `pnpm bench` runs with them too (the root package.json; test/deploy checks both scripts): its
 * process lives through the whole matrix and hosts the consumer and e2e clients, and fell into
 * the same regime (consumer rows 3.1-3.7M records/s without the flags, 4.5-6.6M with them). A
 * fresh client process does not (`flotilla perf consume` by hand: no difference), so the
 * producer workers the perf tools start run without them.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--no-memory-reducer", "--heap-growing-percent=200"];
