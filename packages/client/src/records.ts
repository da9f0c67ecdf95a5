import { BATCH_HEADER_BYTES, recordFieldsBytes } from "@flotilla/protocol";

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

/** Bytes of a zig-zag varint (Kafka's record fields use signed varints); `value` is a safe integer. */
export function varintBytes(value: number): number {
  // Compares instead of dividing: this runs for every record send() takes.
  const v = value >= 0 ? value * 2 : -value * 2 - 1;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (let rest = Math.floor(v / 2 ** 35); rest >= 1; rest = Math.floor(rest / 128)) n++;
  return n;
}

/**
 * An upper bound of the bytes a record takes inside an uncompressed RecordBatch v2, from
 * `recordFieldsBytes` of its key, value and headers (everything but its length,
 * timestampDelta and offsetDelta varints; see the record layout in the protocol package).
 * The deltas are counted at their largest (10 and 5 bytes), since the batch the record will
 * join is not known yet. send() uses it to check buffer.memory and the record size limits
 * before any record of a call is queued; the accumulator then charges the exact bytes.
 */
export function recordBytesMax(fieldsBytes: number): number {
  const body = fieldsBytes + 10 + 5;
  return varintBytes(body) + body;
}

/** `recordBytesMax` of a whole record. */
export function estimateRecordSizeBytes(record: OutgoingRecord): number {
  return recordBytesMax(recordFieldsBytes(record.key, record.value, record.headers));
}

/** Bytes of a batch holding records of the given estimated sizes. */
export function estimateBatchSizeBytes(recordBytes: number): number {
  return BATCH_HEADER_BYTES + recordBytes;
}
