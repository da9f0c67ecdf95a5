import { BATCH_HEADER_BYTES } from "@flotilla/protocol";

/** What callers may pass as a key, value or header value: strings are encoded as UTF-8. */
export type Bytes = string | Buffer | Uint8Array;

export interface MessageHeaderInput {
  key: string;
  value: Bytes | null;
}

/** Headers as an object (one value per key) or as a list (repeated keys allowed, order kept). */
export type HeadersInput = Record<string, Bytes | null> | MessageHeaderInput[];

/** A record header as stored and returned to consumers. */
export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** A record ready for the batch codec: bytes and a CreateTime timestamp in ms since the epoch. */
export interface OutgoingRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  timestamp: number;
}

export function toBuffer(value: Bytes | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (Buffer.isBuffer(value)) return value;
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function toHeaders(headers: HeadersInput | undefined): RecordHeader[] {
  if (!headers) return [];
  if (Array.isArray(headers)) return headers.map((h) => ({ key: h.key, value: toBuffer(h.value) }));
  return Object.entries(headers).map(([key, value]) => ({ key, value: toBuffer(value) }));
}

/** Bytes of a zig-zag varint (Kafka's record fields use signed varints). */
export function varintBytes(value: number): number {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * An upper bound of the bytes one record takes inside an uncompressed RecordBatch v2 (the
 * record layout: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 * key length + key, value length + value, header count, then each header's key length + key
 * and value length + value). Deltas are counted at their largest (10 and 5 bytes), since the
 * batch they will join is not known yet. The accumulator uses it to fill batches up to
 * batch.size; compression only makes the real batch smaller.
 */
export function estimateRecordSizeBytes(record: OutgoingRecord): number {
  let body = 1 + 10 + 5;
  body += record.key ? varintBytes(record.key.length) + record.key.length : 1;
  body += record.value ? varintBytes(record.value.length) + record.value.length : 1;
  body += varintBytes(record.headers.length);
  for (const h of record.headers) {
    const k = Buffer.byteLength(h.key, "utf8");
    body += varintBytes(k) + k;
    body += h.value ? varintBytes(h.value.length) + h.value.length : 1;
  }
  return varintBytes(body) + body;
}

/** Bytes of a batch holding records of the given estimated sizes. */
export function estimateBatchSizeBytes(recordBytes: number): number {
  return BATCH_HEADER_BYTES + recordBytes;
}
