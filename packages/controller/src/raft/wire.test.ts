import { describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { serviceClientCtor } from "@flotilla/protocol";
import type { Message, MessageType } from "@flotilla/raft";
import { RAFT_PROTO, RAFT_TRANSPORT_SERVICE, messageFromWire, messageToWire, type WireMessage, type WireMessageBatch } from "./wire.js";

const TYPES: MessageType[] = [
  "PreVote", "PreVoteResp", "Vote", "VoteResp", "Append", "AppendResp", "Heartbeat",
  "HeartbeatResp", "InstallSnapshot", "InstallSnapshotResp", "TimeoutNow",
];

function sample(type: MessageType, i: number): Message {
  return {
    type,
    from: 1 + i,
    to: 2 + i,
    term: 2 ** 40 + i,
    logIndex: 10 + i,
    logTerm: 3,
    entries: type === "Append" ? [
      { term: 3, index: 11 + i, type: "noop", data: new Uint8Array() },
      { term: 3, index: 12 + i, type: "normal", data: new Uint8Array([1, 2, 3, 255]) },
    ] : [],
    commit: 9,
    reject: i % 2 === 1,
    hintIndex: 7,
    hintTerm: 2,
    ...(type === "InstallSnapshot" ? { snapshot: { meta: { index: 50, term: 4, voters: [1, 2, 3], observers: [9] }, data: new Uint8Array([9, 8, 7]) } } : {}),
    ...(type === "Heartbeat" ? { context: "read-17" } : {}),
  };
}

/** Through the real protobuf encoding, as gRPC does it. */
function roundTrip(messages: Message[]): Message[] {
  const send = serviceClientCtor(RAFT_PROTO, RAFT_TRANSPORT_SERVICE).service.Send!;
  const wire: WireMessageBatch = { from: 1, to: 2, messages: messages.map(messageToWire) };
  const back = send.requestDeserialize(send.requestSerialize(wire)) as WireMessageBatch;
  return back.messages.map(messageFromWire);
}

function normalize(m: Message): unknown {
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: [...e.data] })),
    ...(m.snapshot ? { snapshot: { meta: m.snapshot.meta, data: [...m.snapshot.data] } } : {}),
  };
}

describe("raft message wire codec", () => {
  it("every message type survives protobuf encoding with all its fields", () => {
    const messages = TYPES.map(sample);
    expect(roundTrip(messages).map(normalize)).toEqual(messages.map(normalize));
  });

  it("an absent snapshot and an empty context stay absent", () => {
    const [back] = roundTrip([sample("Vote", 0)]);
    expect(back).not.toHaveProperty("snapshot");
    expect(back).not.toHaveProperty("context");
  });

  it("an unknown message type or entry type is an INVALID_REQUEST, not a crash", () => {
    const wire = messageToWire(sample("Append", 0));
    expect(() => messageFromWire({ ...wire, type: "RAFT_MESSAGE_TYPE_UNSPECIFIED" })).toThrow(FlotillaError);
    const badEntry = { ...wire, entries: [{ ...wire.entries[0]!, type: "BOGUS" }] } as unknown as WireMessage;
    expect(() => messageFromWire(badEntry)).toThrow(/unknown raft entry type BOGUS/);
  });
});
