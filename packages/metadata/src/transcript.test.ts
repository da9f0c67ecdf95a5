/**
 * Transcript test of replay (etcd's datadriven style): a script of records, one per
 * line, and after each the image rendered as text. The expected trace lives in
 * testdata/replay.txt; review its diff like code before committing a change to it.
 */
import { describe, expect, it } from "vitest";
import { EMPTY_IMAGE, type MetadataImage } from "./image.js";
import { MetadataDelta } from "./delta.js";
import type { MetadataRecord } from "./records.js";

const ep = (port: number) => [{ name: "PLAINTEXT", host: "10.0.0.1", port }];

const SCRIPT: MetadataRecord[] = [
  { type: "RegisterBroker", brokerId: 1, incarnationId: "b1-a", endpoints: ep(9092), rack: "r1" },
  { type: "RegisterBroker", brokerId: 2, incarnationId: "b2-a", endpoints: ep(9093), rack: null },
  { type: "UnfenceBroker", brokerId: 1, brokerEpoch: 0 },
  { type: "UnfenceBroker", brokerId: 2, brokerEpoch: 1 },
  { type: "Topic", name: "orders", topicId: "T-orders" },
  { type: "Partition", topicId: "T-orders", partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { type: "Partition", topicId: "T-orders", partition: 1, replicas: [2, 1], isr: [2, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
  { type: "Config", resourceType: "topic", resourceName: "orders", name: "retention.ms", value: "60000" },
  { type: "FenceBroker", brokerId: 2, brokerEpoch: 1 },
  { type: "PartitionChange", topicId: "T-orders", partition: 1, leader: 1, isr: [1] },
  { type: "RegisterBroker", brokerId: 2, incarnationId: "b2-b", endpoints: ep(9093), rack: null },
  { type: "UnfenceBroker", brokerId: 2, brokerEpoch: 10 },
  { type: "PartitionChange", topicId: "T-orders", partition: 1, isr: [1, 2] },
  { type: "ProducerIds", brokerId: 1, brokerEpoch: 0, nextProducerId: 1000 },
  { type: "RemoveTopic", topicId: "T-orders" },
];

function render(image: MetadataImage): string {
  const lines: string[] = [`  offset ${image.offset}`];
  for (const b of [...image.brokers.values()].sort((x, y) => x.brokerId - y.brokerId)) {
    lines.push(`  broker ${b.brokerId} epoch=${b.brokerEpoch} ${b.fenced ? "fenced" : "unfenced"} rack=${b.rack ?? "-"} inc=${b.incarnationId}`);
  }
  for (const t of [...image.topicsByName.values()]) {
    lines.push(`  topic ${t.name} id=${t.topicId}`);
    for (const [p, r] of [...t.partitions].sort(([a], [b]) => a - b)) {
      lines.push(`    ${p}: leader=${r.leader} replicas=[${r.replicas.join(",")}] isr=[${r.isr.join(",")}] leaderEpoch=${r.leaderEpoch} partitionEpoch=${r.partitionEpoch}`);
    }
  }
  for (const [name, cfg] of image.configs.topic) lines.push(`  config topic ${name} ${[...cfg].map(([k, v]) => `${k}=${v}`).join(" ")}`);
  if (image.producerIds.nextProducerId > 0) lines.push(`  producerIds next=${image.producerIds.nextProducerId} broker=${image.producerIds.brokerId}`);
  return lines.join("\n");
}

describe("metadata replay transcript", () => {
  it("matches testdata/replay.txt", async () => {
    let image = EMPTY_IMAGE;
    const out: string[] = [];
    SCRIPT.forEach((record, offset) => {
      const delta = new MetadataDelta(image).replay(record, offset);
      image = delta.apply();
      const { type, ...fields } = record;
      out.push(`> ${type} ${JSON.stringify(fields)}`, render(image));
    });
    await expect(out.join("\n") + "\n").toMatchFileSnapshot("./testdata/replay.txt");
  });
});
