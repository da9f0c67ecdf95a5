/**
 * Byte encoding of a whole metadata image, for Raft snapshots of the metadata log and for
 * FetchMetadata answers to brokers that are too far behind for records. UTF-8 JSON:
 *
 *   {"v":1,"offset":41,
 *    "brokers":[{"brokerId":1,"incarnationId":"..","brokerEpoch":0,"endpoints":[{"name","host","port"}],"rack":null,"fenced":false}],
 *    "topics":[{"name":"orders","topicId":"..","partitions":[[0,{"replicas":[1,2],"isr":[1,2],"leader":1,"leaderEpoch":0,"partitionEpoch":0}]]}],
 *    "topicConfigs":[["orders",[["retention.ms","1000"]]]],
 *    "brokerConfigs":[["",[["k","v"]]]],
 *    "producerIds":{"brokerId":-1,"brokerEpoch":-1,"nextProducerId":0}}
 *
 * `v` is the encoding version; a reader refuses another. The image is small (a record
 * per partition), so JSON's size does not matter and a snapshot stays readable. Decoding
 * rebuilds frozen maps exactly as replay would have, and checks the shape: a snapshot
 * that does not decode is STORAGE_CORRUPT naming what is wrong.
 */
import { FlotillaError } from "@flotilla/common";
import type { BrokerRegistration, MetadataImage, PartitionRegistration, TopicImage } from "@flotilla/metadata";

const SNAPSHOT_VERSION = 1;

type Json = Record<string, unknown>;

export function encodeImage(image: MetadataImage): Uint8Array {
  const pairs = (m: ReadonlyMap<string, ReadonlyMap<string, string>>) => [...m].map(([k, v]) => [k, [...v]]);
  const body = {
    v: SNAPSHOT_VERSION,
    offset: image.offset,
    brokers: [...image.brokers.values()],
    topics: [...image.topicsById.values()].map((t) => ({ name: t.name, topicId: t.topicId, partitions: [...t.partitions] })),
    topicConfigs: pairs(image.configs.topic),
    brokerConfigs: pairs(image.configs.broker),
    producerIds: image.producerIds,
  };
  return Buffer.from(JSON.stringify(body), "utf8");
}

function bad(where: string, why: string): FlotillaError {
  return new FlotillaError("STORAGE_CORRUPT", `${where}: ${why}`);
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);

function configMap(value: unknown, where: string): Map<string, ReadonlyMap<string, string>> {
  if (!Array.isArray(value)) throw bad(where, "configs are not a list");
  const out = new Map<string, ReadonlyMap<string, string>>();
  for (const entry of value) {
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1])) throw bad(where, `bad config entry ${JSON.stringify(entry)}`);
    const inner = new Map<string, string>();
    for (const kv of entry[1] as unknown[]) {
      if (!Array.isArray(kv) || typeof kv[0] !== "string" || typeof kv[1] !== "string") throw bad(where, `bad config pair ${JSON.stringify(kv)}`);
      inner.set(kv[0], kv[1]);
    }
    out.set(entry[0], inner);
  }
  return out;
}

/** Decodes an image written by encodeImage, or throws STORAGE_CORRUPT (`where` names the source). */
export function decodeImage(bytes: Uint8Array, where = "metadata snapshot"): MetadataImage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (err) {
    throw new FlotillaError("STORAGE_CORRUPT", `${where} is not valid JSON (${bytes.byteLength} bytes): ${(err as Error).message}`, { cause: err });
  }
  const body = parsed as Json;
  if (typeof body !== "object" || body === null) throw bad(where, "not a JSON object");
  if (body.v !== SNAPSHOT_VERSION) throw bad(where, `encoding version ${JSON.stringify(body.v)}; this build reads ${SNAPSHOT_VERSION}`);
  if (!isInt(body.offset) || body.offset < -1) throw bad(where, `bad offset ${JSON.stringify(body.offset)}`);
  if (!Array.isArray(body.brokers) || !Array.isArray(body.topics)) throw bad(where, "brokers or topics missing");

  const brokers = new Map<number, BrokerRegistration>();
  for (const b of body.brokers as Json[]) {
    if (!isInt(b.brokerId) || typeof b.incarnationId !== "string" || !isInt(b.brokerEpoch) || !Array.isArray(b.endpoints) || typeof b.fenced !== "boolean" || !(b.rack === null || typeof b.rack === "string")) {
      throw bad(where, `bad broker ${JSON.stringify(b)}`);
    }
    const endpoints = (b.endpoints as Json[]).map((e) => {
      if (typeof e.name !== "string" || typeof e.host !== "string" || !isInt(e.port)) throw bad(where, `bad endpoint ${JSON.stringify(e)}`);
      return Object.freeze({ name: e.name, host: e.host, port: e.port });
    });
    brokers.set(b.brokerId, Object.freeze({ brokerId: b.brokerId, incarnationId: b.incarnationId, brokerEpoch: b.brokerEpoch, endpoints: Object.freeze(endpoints), rack: b.rack as string | null, fenced: b.fenced }));
  }

  const topicsById = new Map<string, TopicImage>();
  const topicsByName = new Map<string, TopicImage>();
  for (const t of body.topics as Json[]) {
    if (typeof t.name !== "string" || typeof t.topicId !== "string" || !Array.isArray(t.partitions)) throw bad(where, `bad topic ${JSON.stringify(t).slice(0, 200)}`);
    const partitions = new Map<number, PartitionRegistration>();
    for (const entry of t.partitions as unknown[]) {
      const [index, p] = entry as [unknown, Json];
      if (!isInt(index) || typeof p !== "object" || p === null || !isIntArray(p.replicas) || !isIntArray(p.isr) || !isInt(p.leader) || !isInt(p.leaderEpoch) || !isInt(p.partitionEpoch)) {
        throw bad(where, `bad partition ${JSON.stringify(entry)} of topic ${t.name}`);
      }
      partitions.set(index, Object.freeze({ replicas: Object.freeze([...p.replicas]), isr: Object.freeze([...p.isr]), leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch }));
    }
    const topic: TopicImage = Object.freeze({ name: t.name, topicId: t.topicId, partitions });
    topicsById.set(topic.topicId, topic);
    topicsByName.set(topic.name, topic);
  }
  const pids = body.producerIds as Json | undefined;
  if (!pids || !isInt(pids.brokerId) || !isInt(pids.brokerEpoch) || !isInt(pids.nextProducerId)) throw bad(where, `bad producerIds ${JSON.stringify(pids)}`);
  return Object.freeze({
    offset: body.offset,
    brokers,
    topicsById,
    topicsByName,
    configs: Object.freeze({ topic: configMap(body.topicConfigs, where), broker: configMap(body.brokerConfigs, where) }),
    producerIds: Object.freeze({ brokerId: pids.brokerId, brokerEpoch: pids.brokerEpoch, nextProducerId: pids.nextProducerId }),
  });
}
