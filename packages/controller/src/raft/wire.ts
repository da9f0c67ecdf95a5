/**
 * Raft messages to and from the shapes of proto/flotilla/raft/v1/raft.proto as loaded by
 * @grpc/proto-loader with PROTO_LOADER_OPTIONS (camelCase, uint64 as number, enums as
 * their names, bytes as Buffer, defaults filled in, absent sub-messages as null).
 */
import { FlotillaError } from "@flotilla/common";
import type { Entry, EntryType, Message, MessageType, Snapshot } from "@flotilla/raft";

export const RAFT_PROTO = "flotilla/raft/v1/raft.proto";
export const RAFT_TRANSPORT_SERVICE = "flotilla.raft.v1.RaftTransport";
export const RAFT_TEST_MACHINE_SERVICE = "flotilla.raft.v1.RaftTestMachine";

export type WireMessageType =
  | "PRE_VOTE"
  | "PRE_VOTE_RESP"
  | "VOTE"
  | "VOTE_RESP"
  | "APPEND"
  | "APPEND_RESP"
  | "HEARTBEAT"
  | "HEARTBEAT_RESP"
  | "INSTALL_SNAPSHOT"
  | "INSTALL_SNAPSHOT_RESP"
  | "TIMEOUT_NOW";

export interface WireEntry {
  term: number;
  index: number;
  type: "NORMAL" | "NOOP";
  data: Uint8Array;
}

export interface WireSnapshot {
  index: number;
  term: number;
  voters: number[];
  observers: number[];
  data: Uint8Array;
}

export interface WireMessage {
  type: WireMessageType | "RAFT_MESSAGE_TYPE_UNSPECIFIED";
  from: number;
  to: number;
  term: number;
  logIndex: number;
  logTerm: number;
  entries: WireEntry[];
  commit: number;
  reject: boolean;
  hintIndex: number;
  hintTerm: number;
  snapshot: WireSnapshot | null;
  context: string;
}

export interface WireMessageBatch {
  from: number;
  to: number;
  messages: WireMessage[];
}

const TO_WIRE: Record<MessageType, WireMessageType> = {
  PreVote: "PRE_VOTE",
  PreVoteResp: "PRE_VOTE_RESP",
  Vote: "VOTE",
  VoteResp: "VOTE_RESP",
  Append: "APPEND",
  AppendResp: "APPEND_RESP",
  Heartbeat: "HEARTBEAT",
  HeartbeatResp: "HEARTBEAT_RESP",
  InstallSnapshot: "INSTALL_SNAPSHOT",
  InstallSnapshotResp: "INSTALL_SNAPSHOT_RESP",
  TimeoutNow: "TIMEOUT_NOW",
};
const FROM_WIRE = new Map<string, MessageType>(Object.entries(TO_WIRE).map(([k, v]) => [v, k as MessageType]));

const ENTRY_TO_WIRE: Record<EntryType, WireEntry["type"]> = { normal: "NORMAL", noop: "NOOP" };

function entryToWire(e: Entry): WireEntry {
  return { term: e.term, index: e.index, type: ENTRY_TO_WIRE[e.type], data: e.data };
}

function snapshotToWire(s: Snapshot): WireSnapshot {
  return { index: s.meta.index, term: s.meta.term, voters: [...s.meta.voters], observers: [...s.meta.observers], data: s.data };
}

export function messageToWire(m: Message): WireMessage {
  return {
    type: TO_WIRE[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
    logIndex: m.logIndex,
    logTerm: m.logTerm,
    entries: m.entries.map(entryToWire),
    commit: m.commit,
    reject: m.reject,
    hintIndex: m.hintIndex,
    hintTerm: m.hintTerm,
    snapshot: m.snapshot ? snapshotToWire(m.snapshot) : null,
    context: m.context ?? "",
  };
}

function nonNegative(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new FlotillaError("INVALID_REQUEST", `raft message field ${what} is not a non-negative integer: ${String(value)}`);
  }
  return value;
}

/** Bytes from the loader (a Buffer) as a plain Uint8Array view, no copy. */
function bytesOf(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new FlotillaError("INVALID_REQUEST", `raft message field ${what} is not bytes`);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function entryFromWire(w: WireEntry): Entry {
  if (w.type !== "NORMAL" && w.type !== "NOOP") throw new FlotillaError("INVALID_REQUEST", `unknown raft entry type ${String(w.type)}`);
  return {
    term: nonNegative(w.term, "entry.term"),
    index: nonNegative(w.index, "entry.index"),
    type: w.type === "NOOP" ? "noop" : "normal",
    data: bytesOf(w.data, "entry.data"),
  };
}

/** Throws FlotillaError INVALID_REQUEST for a message this build cannot understand. */
export function messageFromWire(w: WireMessage): Message {
  const type = FROM_WIRE.get(w.type);
  if (type === undefined) throw new FlotillaError("INVALID_REQUEST", `unknown raft message type ${String(w.type)}`);
  const base = {
    type,
    from: nonNegative(w.from, "from"),
    to: nonNegative(w.to, "to"),
    term: nonNegative(w.term, "term"),
    logIndex: nonNegative(w.logIndex, "logIndex"),
    logTerm: nonNegative(w.logTerm, "logTerm"),
    entries: (w.entries ?? []).map(entryFromWire),
    commit: nonNegative(w.commit, "commit"),
    reject: w.reject === true,
    hintIndex: nonNegative(w.hintIndex, "hintIndex"),
    hintTerm: nonNegative(w.hintTerm, "hintTerm"),
  };
  const snapshot: Snapshot | undefined = w.snapshot
    ? {
        meta: {
          index: nonNegative(w.snapshot.index, "snapshot.index"),
          term: nonNegative(w.snapshot.term, "snapshot.term"),
          voters: [...w.snapshot.voters],
          observers: [...w.snapshot.observers],
        },
        data: bytesOf(w.snapshot.data, "snapshot.data"),
      }
    : undefined;
  return {
    ...base,
    ...(snapshot ? { snapshot } : {}),
    ...(w.context ? { context: w.context } : {}),
  };
}
