/**
 * RaftCore's configuration defaults and validation. A bad configuration is an operating
 * error (it comes from a file or the environment), so it is a FlotillaError naming the
 * field, not an assert.
 */
import { FlotillaError } from "@flotilla/common";
import { NONE, type RaftConfig } from "./types.js";

/** Vote.context of a campaign started by TimeoutNow (thesis §3.10). */
export const TRANSFER_CONTEXT = "transfer";

export const RAFT_DEFAULTS = {
  maxEntriesPerAppend: 256,
  maxInflightAppends: 64,
  maxUncommittedEntries: 10_000,
  maxCommittedEntriesPerReady: 1024,
  maxPendingReadIndex: 4096,
} as const;

export function validateConfig(config: RaftConfig): void {
  const bad = (detail: string): never => {
    throw new FlotillaError("INVALID_CONFIG", `raft: ${detail}`);
  };
  const voters = config.voters;
  const observers = config.observers ?? [];
  if (voters.length === 0) bad("the voter set is empty");
  const all = [...voters, ...observers];
  if (all.some((id) => !Number.isInteger(id) || id <= NONE)) bad(`node ids must be positive integers, got ${all.join(",")}`);
  if (new Set(all).size !== all.length) bad(`a node id appears twice among voters ${voters.join(",")} and observers ${observers.join(",")}`);
  if (!all.includes(config.id)) bad(`node ${config.id} is neither a voter nor an observer`);
  if (!Number.isInteger(config.heartbeatTicks) || config.heartbeatTicks < 1) bad(`heartbeatTicks must be >= 1, got ${config.heartbeatTicks}`);
  if (!Number.isInteger(config.electionTicks) || config.electionTicks <= config.heartbeatTicks)
    bad(`electionTicks (${config.electionTicks}) must be an integer greater than heartbeatTicks (${config.heartbeatTicks})`);
  for (const key of ["maxEntriesPerAppend", "maxInflightAppends", "maxUncommittedEntries", "maxCommittedEntriesPerReady", "maxPendingReadIndex"] as const) {
    const v = config[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) bad(`${key} must be a positive integer, got ${v}`);
  }
}

