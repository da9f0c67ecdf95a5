/**
 * Test fixture for pipeline.test.ts: a client process that opens a Pipeline stream to
 * 127.0.0.1:<port>, writes <count> fetch requests, and once the first answer came back
 * prints "sent" and freezes itself (SIGSTOP), reading none of the others: the broker's
 * socket and HTTP/2 window fill as with a client that hangs. After SIGCONT it reads every answer, prints "answers <n>" and
 * exits 0. Any failure exits 1 with the reason on stderr.
 */
import * as grpc from "@grpc/grpc-js";
import { BROKER_PROTO, BROKER_SERVICE, GRPC_CHANNEL_OPTIONS, serviceClientCtor } from "../grpc.js";
import type { PipelineRequest, PipelineResponse } from "../pipeline.js";

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
if (!Number.isInteger(port) || !Number.isInteger(count) || count < 1) {
  process.stderr.write("usage: pipeline-stalled-client.ts <port> <count>\n");
  process.exit(1);
}
const Ctor = serviceClientCtor(BROKER_PROTO, BROKER_SERVICE);
const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
const open = (client as unknown as { Pipeline: (m: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientDuplexStream<PipelineRequest, PipelineResponse> }).Pipeline;
const stream = open.call(client, new grpc.Metadata(), {});
let answers = 0;
stream.on("error", (err: Error) => {
  process.stderr.write(`stream failed: ${err.message}\n`);
  process.exit(1);
});
for (let i = 0; i < count; i++) {
  stream.write({ correlationId: i + 1, body: "fetch", fetch: { replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1, topics: [] } });
}
// The first answer shows the requests reached the broker; then stop before reading the rest.
stream.once("data", () => {
  answers++;
  stream.pause();
  process.stdout.write("sent\n");
  process.kill(process.pid, "SIGSTOP");
  // Resumed: read every answer.
  stream.on("data", () => {
    answers++;
    if (answers === count) {
      process.stdout.write(`answers ${answers}\n`);
      stream.cancel();
      client.close();
      process.exit(0);
    }
  });
  stream.resume();
});
setTimeout(() => {
  process.stderr.write(`only ${answers} of ${count} answers within 120 s\n`);
  process.exit(1);
}, 120_000).unref();
