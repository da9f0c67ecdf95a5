/**
 * A consumer-group member as its own process, for tests that kill members with SIGKILL.
 *
 *   node --import tsx test/helpers/group-member.ts '<json options>' <events file>
 *
 * Options: { bootstrapServers, groupId, topics, clientId?, sessionTimeoutMs?,
 * heartbeatIntervalMs?, autoCommitIntervalMs?, partitionAssigners?, autoOffsetReset?,
 * metadataMaxAgeMs?, groupInstanceId? }.
 *
 * Every event is appended to the events file as one JSON line, written with a synchronous
 * write before the member goes on, so a SIGKILL loses nothing that happened before it:
 *   {"event":"record","topic","partition","offset","value"}    after eachMessage processed it
 *   {"event":"committed","offsets":[{topic,partition,offset}]}  after the coordinator acknowledged a commit
 *   {"event":"assigned"|"revoked"|"lost","partitions":[...],"assignment":[...]}
 * Stdout gets {"event":"ready"} once the member is running, and {"event":"closed"} after a
 * clean disconnect (SIGTERM or SIGINT: commit, leave the group, exit 0).
 */
import fs from "node:fs";
import { GroupConsumer, type GroupConsumerOptions } from "../../packages/client/src/index.js";

const [optionsJson, eventsPath] = process.argv.slice(2);
if (!optionsJson || !eventsPath) {
  process.stderr.write("usage: group-member.ts '<json options>' <events file>\n");
  process.exit(2);
}
const options = JSON.parse(optionsJson) as GroupConsumerOptions & { topics: string[] };
const fd = fs.openSync(eventsPath, "a");
const emit = (event: Record<string, unknown>): void => {
  fs.writeSync(fd, `${JSON.stringify({ ...event, pid: process.pid, atMs: Date.now() })}\n`);
};

const consumer = new GroupConsumer({ ...options, onOffsetsCommitted: (offsets) => emit({ event: "committed", offsets }) });
consumer.subscribe({
  topics: options.topics,
  onPartitionsAssigned: (partitions) => emit({ event: "assigned", partitions, assignment: consumer.assignment() }),
  onPartitionsRevoked: (partitions) => emit({ event: "revoked", partitions, assignment: consumer.assignment() }),
  onPartitionsLost: (partitions) => emit({ event: "lost", partitions, assignment: consumer.assignment() }),
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void consumer
    .disconnect()
    .then(() => {
      process.stdout.write(`${JSON.stringify({ event: "closed" })}\n`);
      fs.closeSync(fd);
      process.exit(0);
    })
    .catch((err: unknown) => {
      process.stderr.write(`disconnect failed: ${String(err)}\n`);
      process.exit(1);
    });
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

process.stdout.write(`${JSON.stringify({ event: "ready", pid: process.pid })}\n`);
consumer
  .run({
    eachMessage: (r) => {
      emit({ event: "record", topic: r.topic, partition: r.partition, offset: r.offset, value: r.value?.toString() ?? null });
    },
  })
  .catch((err: unknown) => {
    process.stderr.write(`run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
