import { FlotillaError } from "@flotilla/common";

/**
 * Kafka's ConsumerProtocol: the bytes a consumer puts in JoinGroup (its Subscription, one
 * per assignor it offers) and the leader puts in SyncGroup (each member's Assignment). The
 * coordinator never looks inside them, so the layout is the clients' contract, and it is
 * Kafka's own (ConsumerProtocolSubscription.json, ConsumerProtocolAssignment.json, not
 * "flexible" versions), so that real Kafka clients can later share a group.
 *
 * All integers are big-endian. STRING = int16 length + UTF-8; NULLABLE_STRING uses length
 * -1 for null; BYTES = int32 length + bytes, -1 = null; ARRAY<T> = int32 count + items.
 *
 *   Subscription
 *     v0: version int16 | topics ARRAY<STRING> | user_data BYTES
 *     v1: v0 + owned_partitions ARRAY<{ topic STRING, partitions ARRAY<int32> }>
 *     v2: v1 + generation_id int32 (-1 = unknown)
 *     v3: v2 + rack_id NULLABLE_STRING
 *   Assignment (every version v0..v3 has this layout)
 *     version int16 | assigned_partitions ARRAY<{ topic STRING, partitions ARRAY<int32> }> | user_data BYTES
 *
 * A reader accepts any version >= 0, reads the fields it knows for that version and
 * ignores trailing bytes (Kafka's forward-compatibility rule). An empty buffer is an empty
 * Assignment ("no partitions"), as the coordinator sends to a member the leader left out.
 */

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface Subscription {
  /** Written version; a decoded Subscription keeps the version it was read with. */
  version: number;
  topics: string[];
  userData: Buffer | null;
  /** v1+: partitions the member owns now (cooperative rebalancing). */
  ownedPartitions: TopicPartitions[];
  /** v2+: the generation the owned partitions belong to; -1 unknown. */
  generationId: number;
  /** v3+: the member's rack; null unknown. */
  rackId: string | null;
}

export interface Assignment {
  version: number;
  assignedPartitions: TopicPartitions[];
  userData: Buffer | null;
}

/** The highest versions this client writes and fully understands. */
export const SUBSCRIPTION_VERSION_MAX = 3;
export const ASSIGNMENT_VERSION_MAX = 3;

/** Grows a byte buffer as fields are appended. */
class Writer {
  private buf = Buffer.alloc(64);
  private len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.len);
    this.len += 2;
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.len);
    this.len += 4;
    return this;
  }
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s, "utf8");
    if (b.length > 0x7fff) throw new FlotillaError("INVALID_REQUEST", `string of ${b.length} bytes is too long for the consumer protocol (max 32767)`);
    this.int16(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    return this;
  }
  bytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    return this;
  }
  topicPartitions(list: readonly TopicPartitions[]): this {
    this.int32(list.length);
    for (const tp of list) {
      this.string(tp.topic);
      this.int32(tp.partitions.length);
      for (const p of tp.partitions) this.int32(p);
    }
    return this;
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

/** Reads fields with bounds checks; a short or malformed buffer is INVALID_REQUEST naming what. */
class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  private need(n: number, field: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new FlotillaError("INVALID_REQUEST", `${this.what}: ${field} needs ${n} byte(s) at ${this.pos}, only ${this.buf.length - this.pos} left`);
    }
  }
  int16(field: string): number {
    this.need(2, field);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(field: string): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  nullableString(field: string): string | null {
    const n = this.int16(`${field} length`);
    if (n === -1) return null;
    this.need(n, field);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  string(field: string): string {
    const s = this.nullableString(field);
    if (s === null) throw new FlotillaError("INVALID_REQUEST", `${this.what}: ${field} is null`);
    return s;
  }
  bytes(field: string): Buffer | null {
    const n = this.int32(`${field} length`);
    if (n === -1) return null;
    this.need(n, field);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
  count(field: string, minItemBytes: number): number {
    const n = this.int32(`${field} count`);
    // A count the remaining bytes cannot hold is malformed; checking it first bounds the loop.
    if (n < 0 || n * minItemBytes > this.buf.length - this.pos) {
      throw new FlotillaError("INVALID_REQUEST", `${this.what}: ${field} count ${n} does not fit in ${this.buf.length - this.pos} remaining byte(s)`);
    }
    return n;
  }
  topicPartitions(field: string): TopicPartitions[] {
    const n = this.count(field, 6);
    const out: TopicPartitions[] = [];
    for (let i = 0; i < n; i++) {
      const topic = this.string(`${field}[${i}].topic`);
      const m = this.count(`${field}[${i}].partitions`, 4);
      const partitions: number[] = [];
      for (let j = 0; j < m; j++) partitions.push(this.int32(`${field}[${i}].partitions[${j}]`));
      out.push({ topic, partitions });
    }
    return out;
  }
}

export function encodeSubscription(s: Omit<Subscription, "version"> & { version?: number }): Buffer {
  const version = s.version ?? SUBSCRIPTION_VERSION_MAX;
  if (!Number.isInteger(version) || version < 0 || version > SUBSCRIPTION_VERSION_MAX) {
    throw new FlotillaError("UNSUPPORTED_VERSION", `consumer protocol subscription version ${version} (this client writes 0..${SUBSCRIPTION_VERSION_MAX})`);
  }
  const w = new Writer().int16(version).int32(s.topics.length);
  for (const t of s.topics) w.string(t);
  w.bytes(s.userData);
  if (version >= 1) w.topicPartitions(s.ownedPartitions);
  if (version >= 2) w.int32(s.generationId);
  if (version >= 3) w.string(s.rackId);
  return w.done();
}

export function decodeSubscription(buf: Buffer): Subscription {
  const r = new Reader(buf, "consumer protocol subscription");
  const version = r.int16("version");
  if (version < 0) throw new FlotillaError("UNSUPPORTED_VERSION", `consumer protocol subscription version ${version}`);
  const n = r.count("topics", 2);
  const topics: string[] = [];
  for (let i = 0; i < n; i++) topics.push(r.string(`topics[${i}]`));
  const userData = r.bytes("user_data");
  const ownedPartitions = version >= 1 ? r.topicPartitions("owned_partitions") : [];
  const generationId = version >= 2 ? r.int32("generation_id") : -1;
  const rackId = version >= 3 ? r.nullableString("rack_id") : null;
  return { version, topics, userData, ownedPartitions, generationId, rackId };
}

export function encodeAssignment(a: Omit<Assignment, "version"> & { version?: number }): Buffer {
  const version = a.version ?? ASSIGNMENT_VERSION_MAX;
  if (!Number.isInteger(version) || version < 0 || version > ASSIGNMENT_VERSION_MAX) {
    throw new FlotillaError("UNSUPPORTED_VERSION", `consumer protocol assignment version ${version} (this client writes 0..${ASSIGNMENT_VERSION_MAX})`);
  }
  return new Writer().int16(version).topicPartitions(a.assignedPartitions).bytes(a.userData).done();
}

export function decodeAssignment(buf: Buffer): Assignment {
  if (buf.length === 0) return { version: 0, assignedPartitions: [], userData: null };
  const r = new Reader(buf, "consumer protocol assignment");
  const version = r.int16("version");
  if (version < 0) throw new FlotillaError("UNSUPPORTED_VERSION", `consumer protocol assignment version ${version}`);
  const assignedPartitions = r.topicPartitions("assigned_partitions");
  const userData = r.bytes("user_data");
  return { version, assignedPartitions, userData };
}

/** Groups topic-partitions by topic, topics and partitions sorted (the wire's shape). */
export function groupByTopic(tps: readonly { topic: string; partition: number }[]): TopicPartitions[] {
  const m = new Map<string, number[]>();
  for (const tp of tps) m.set(tp.topic, [...(m.get(tp.topic) ?? []), tp.partition]);
  return [...m.keys()].sort().map((topic) => ({ topic, partitions: (m.get(topic) as number[]).sort((a, b) => a - b) }));
}

/** The inverse of groupByTopic. */
export function flattenTopicPartitions(list: readonly TopicPartitions[]): { topic: string; partition: number }[] {
  return list.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })));
}
