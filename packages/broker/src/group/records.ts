/**
 * Keys and values of the records in __consumer_offsets, byte for byte Kafka's layouts
 * (GroupMetadataManager / OffsetCommitKey, OffsetCommitValue v3, GroupMetadataKey,
 * GroupMetadataValue v3), so the same bytes could later be read by Kafka tooling.
 * Integers are big-endian. STRING = int16 length + UTF-8; NULLABLE_STRING uses length -1
 * for null; BYTES = int32 length + bytes; ARRAY = int32 count + items.
 *
 * Key (the record key), its first field says which kind of record it is:
 *   version int16: 0 or 1 = offset commit, 2 = group metadata
 *   offset commit key (v0/v1):  group STRING, topic STRING, partition int32
 *   group metadata key (v2):    group STRING
 *
 * Offset commit value (we write v3; v1 and v2 are not read):
 *   version int16 = 3
 *   offset int64              the committed offset (next record to consume)
 *   leaderEpoch int32         -1 = unknown
 *   metadata STRING
 *   commitTimestamp int64     ms since the epoch, when the coordinator accepted the commit
 *
 * Group metadata value (we write v3):
 *   version int16 = 3
 *   protocolType STRING       "" for groups that only store offsets
 *   generation int32
 *   protocol NULLABLE_STRING  chosen assignor, null for an Empty group
 *   leader NULLABLE_STRING    leader member id, null for an Empty group
 *   currentStateTimestamp int64  ms since the epoch the group entered its state (-1 unknown)
 *   members ARRAY of:
 *     memberId STRING, groupInstanceId NULLABLE_STRING, clientId STRING, clientHost STRING,
 *     rebalanceTimeout int32, sessionTimeout int32, subscription BYTES, assignment BYTES
 *
 * A record with a null value is a tombstone: the offset was deleted or expired, or the
 * group was deleted. The last record of a key wins (log order), as log compaction keeps it.
 */
import { FlotillaError } from "@flotilla/common";

export const OFFSET_KEY_VERSION = 1;
export const GROUP_KEY_VERSION = 2;
export const OFFSET_VALUE_VERSION = 3;
export const GROUP_VALUE_VERSION = 3;

export interface OffsetKey {
  readonly kind: "offset";
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
}
export interface GroupKey {
  readonly kind: "group";
  readonly group: string;
}
export type OffsetsTopicKey = OffsetKey | GroupKey;

export interface OffsetValue {
  readonly offset: number;
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestampMs: number;
}

export interface GroupMemberValue {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly subscription: Buffer;
  readonly assignment: Buffer;
}

export interface GroupValue {
  readonly protocolType: string;
  readonly generation: number;
  readonly protocol: string | null;
  readonly leader: string | null;
  readonly currentStateTimestampMs: number;
  readonly members: readonly GroupMemberValue[];
}

class Writer {
  private readonly parts: Buffer[] = [];
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  int64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1);
    const bytes = Buffer.from(v, "utf8");
    if (bytes.length > 32767) throw new FlotillaError("INVALID_REQUEST", `string of ${bytes.length} bytes is longer than 32767`);
    this.int16(bytes.length);
    this.parts.push(bytes);
    return this;
  }
  bytes(v: Buffer): this {
    this.int32(v.length);
    this.parts.push(v);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function corrupt(what: string, detail: string): FlotillaError {
  return new FlotillaError("STORAGE_CORRUPT", `${what} in __consumer_offsets: ${detail}`);
}

class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) throw corrupt(this.what, `${field} runs past the end (${this.buf.length} bytes)`);
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
  int64(field: string): number {
    this.need(8, field);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw corrupt(this.what, `${field} ${v} is beyond 2^53`);
    return Number(v);
  }
  nullableString(field: string): string | null {
    const len = this.int16(field);
    if (len === -1) return null;
    if (len < 0) throw corrupt(this.what, `${field} has length ${len}`);
    this.need(len, field);
    const s = this.buf.toString("utf8", this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  string(field: string): string {
    const s = this.nullableString(field);
    if (s === null) throw corrupt(this.what, `${field} is null`);
    return s;
  }
  bytes(field: string): Buffer {
    const len = this.int32(field);
    if (len === -1) return Buffer.alloc(0);
    if (len < 0) throw corrupt(this.what, `${field} has length ${len}`);
    this.need(len, field);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return b;
  }
}

export function encodeOffsetKey(group: string, topic: string, partition: number): Buffer {
  return new Writer().int16(OFFSET_KEY_VERSION).string(group).string(topic).int32(partition).done();
}

export function encodeGroupKey(group: string): Buffer {
  return new Writer().int16(GROUP_KEY_VERSION).string(group).done();
}

export function decodeKey(buf: Buffer): OffsetsTopicKey {
  const r = new Reader(buf, "record key");
  const version = r.int16("version");
  if (version === 0 || version === 1) return { kind: "offset", group: r.string("group"), topic: r.string("topic"), partition: r.int32("partition") };
  if (version === 2) return { kind: "group", group: r.string("group") };
  throw corrupt("record key", `unknown key version ${version}`);
}

export function encodeOffsetValue(v: OffsetValue): Buffer {
  return new Writer().int16(OFFSET_VALUE_VERSION).int64(v.offset).int32(v.leaderEpoch).string(v.metadata).int64(v.commitTimestampMs).done();
}

export function decodeOffsetValue(buf: Buffer): OffsetValue {
  const r = new Reader(buf, "offset commit value");
  const version = r.int16("version");
  if (version !== OFFSET_VALUE_VERSION) throw corrupt("offset commit value", `unsupported version ${version}`);
  return { offset: r.int64("offset"), leaderEpoch: r.int32("leaderEpoch"), metadata: r.string("metadata"), commitTimestampMs: r.int64("commitTimestamp") };
}

export function encodeGroupValue(v: GroupValue): Buffer {
  const w = new Writer()
    .int16(GROUP_VALUE_VERSION)
    .string(v.protocolType)
    .int32(v.generation)
    .string(v.protocol)
    .string(v.leader)
    .int64(v.currentStateTimestampMs)
    .int32(v.members.length);
  for (const m of v.members) {
    w.string(m.memberId).string(m.groupInstanceId).string(m.clientId).string(m.clientHost).int32(m.rebalanceTimeoutMs).int32(m.sessionTimeoutMs).bytes(m.subscription).bytes(m.assignment);
  }
  return w.done();
}

/** Most members a stored group may list (a bound on decoding, far above group.max.size). */
const STORED_MEMBERS_MAX = 1_000_000;

export function decodeGroupValue(buf: Buffer): GroupValue {
  const r = new Reader(buf, "group metadata value");
  const version = r.int16("version");
  if (version !== GROUP_VALUE_VERSION) throw corrupt("group metadata value", `unsupported version ${version}`);
  const protocolType = r.string("protocolType");
  const generation = r.int32("generation");
  const protocol = r.nullableString("protocol");
  const leader = r.nullableString("leader");
  const currentStateTimestampMs = r.int64("currentStateTimestamp");
  const count = r.int32("members");
  if (count < 0 || count > STORED_MEMBERS_MAX) throw corrupt("group metadata value", `member count ${count}`);
  const members: GroupMemberValue[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      memberId: r.string("memberId"),
      groupInstanceId: r.nullableString("groupInstanceId"),
      clientId: r.string("clientId"),
      clientHost: r.string("clientHost"),
      rebalanceTimeoutMs: r.int32("rebalanceTimeout"),
      sessionTimeoutMs: r.int32("sessionTimeout"),
      subscription: r.bytes("subscription"),
      assignment: r.bytes("assignment"),
    });
  }
  return { protocolType, generation, protocol, leader, currentStateTimestampMs, members };
}
