/**
 * Byte encoding of one metadata record: UTF-8 JSON of a flat object.
 *
 *   {"v":1,"type":"Topic","name":"orders","topicId":"9wM5pQ2xR4aU0c7dZk1e2A"}
 *
 * - `v` is the encoding version, 1. A reader refuses a record with a version it does
 *   not know (it was written by a newer Flotilla) instead of guessing its meaning.
 * - `type` is the record type (./records.ts); the other keys are that type's fields with
 *   the same names. Optional fields (PartitionChange's leader, isr, replicas) are left
 *   out when absent; `null` appears only where the type allows it (rack, Config value).
 * - Readers ignore keys they do not know, so adding an optional field keeps version 1;
 *   changing a field's meaning or type needs version 2.
 * - Integers are JSON numbers and must be safe integers (< 2^53).
 *
 * JSON rather than a binary layout: metadata records are few and small (a topic of N
 * partitions is N + 1 records of ~150 bytes), and a readable log is worth more here than
 * the bytes. The log that stores them (LevelDB, or the Raft log) has its own checksums;
 * a record that fails to decode is reported as STORAGE_CORRUPT with the reason.
 */
import { FlotillaError } from "@flotilla/common";
import type { Endpoint, MetadataRecord, MetadataRecordType } from "./records.js";

export const METADATA_RECORD_VERSION = 1;

type FieldKind = "int" | "string" | "stringOrNull" | "intArray" | "endpoints" | "resourceType" | "optInt" | "optIntArray";

const SCHEMAS: Record<MetadataRecordType, Record<string, FieldKind>> = {
  RegisterBroker: { brokerId: "int", incarnationId: "string", endpoints: "endpoints", rack: "stringOrNull" },
  FenceBroker: { brokerId: "int", brokerEpoch: "int" },
  UnfenceBroker: { brokerId: "int", brokerEpoch: "int" },
  Topic: { name: "string", topicId: "string" },
  Partition: { topicId: "string", partition: "int", replicas: "intArray", isr: "intArray", leader: "int", leaderEpoch: "int", partitionEpoch: "int" },
  PartitionChange: { topicId: "string", partition: "int", leader: "optInt", isr: "optIntArray", replicas: "optIntArray" },
  Config: { resourceType: "resourceType", resourceName: "string", name: "string", value: "stringOrNull" },
  RemoveTopic: { topicId: "string" },
  ProducerIds: { brokerId: "int", brokerEpoch: "int", nextProducerId: "int" },
};

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);
const isEndpoint = (v: unknown): v is Endpoint => {
  const e = v as Record<string, unknown> | null;
  return typeof e === "object" && e !== null && typeof e.name === "string" && typeof e.host === "string" && isInt(e.port);
};

function fieldOk(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case "int":
      return isInt(value);
    case "string":
      return typeof value === "string";
    case "stringOrNull":
      return value === null || typeof value === "string";
    case "intArray":
      return isIntArray(value);
    case "endpoints":
      return Array.isArray(value) && value.every(isEndpoint);
    case "resourceType":
      return value === "topic" || value === "broker";
    case "optInt":
      return value === undefined || isInt(value);
    case "optIntArray":
      return value === undefined || isIntArray(value);
  }
}

/**
 * Checks that `fields` has the shape of a record of `type` and returns the problem, or
 * undefined. Used by the decoder and by asserts on records built in code.
 */
export function recordShapeProblem(fields: Record<string, unknown>): string | undefined {
  const type = fields.type;
  if (typeof type !== "string" || !Object.hasOwn(SCHEMAS, type)) return `unknown record type ${JSON.stringify(type)}`;
  const schema = SCHEMAS[type as MetadataRecordType];
  for (const [name, kind] of Object.entries(schema)) {
    if (!fieldOk(kind, fields[name])) return `${type} record has a bad ${name}: ${JSON.stringify(fields[name])} (want ${kind})`;
  }
  return undefined;
}

export function encodeRecord(record: MetadataRecord): Uint8Array {
  const schema = SCHEMAS[record.type];
  const out: Record<string, unknown> = { v: METADATA_RECORD_VERSION, type: record.type };
  const fields = record as unknown as Record<string, unknown>;
  for (const name of Object.keys(schema)) if (fields[name] !== undefined) out[name] = fields[name];
  return Buffer.from(JSON.stringify(out), "utf8");
}

/** Decodes one record, or throws STORAGE_CORRUPT naming what is wrong (`where` says which record). */
export function decodeRecord(bytes: Uint8Array, where = "metadata record"): MetadataRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (err) {
    throw new FlotillaError("STORAGE_CORRUPT", `${where} is not valid JSON (${bytes.byteLength} bytes): ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FlotillaError("STORAGE_CORRUPT", `${where} is not a JSON object`);
  }
  const fields = parsed as Record<string, unknown>;
  if (fields.v !== METADATA_RECORD_VERSION) {
    throw new FlotillaError("STORAGE_CORRUPT", `${where} has encoding version ${JSON.stringify(fields.v)}; this build reads version ${METADATA_RECORD_VERSION}`);
  }
  const problem = recordShapeProblem(fields);
  if (problem) throw new FlotillaError("STORAGE_CORRUPT", `${where}: ${problem}`);
  // Keep only the schema's fields, so unknown keys never reach the image.
  const record: Record<string, unknown> = { type: fields.type };
  for (const name of Object.keys(SCHEMAS[fields.type as MetadataRecordType])) if (fields[name] !== undefined) record[name] = fields[name];
  return record as unknown as MetadataRecord;
}
