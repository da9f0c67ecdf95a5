import { FlotillaError } from "@flotilla/common";
import type { NodeId } from "@flotilla/raft";

export interface QuorumVoter {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

/** "host:port" of a voter, as used for gRPC targets and leader hints. */
export function voterAddress(voter: QuorumVoter): string {
  return voter.host.includes(":") ? `[${voter.host}]:${voter.port}` : `${voter.host}:${voter.port}`;
}

const VOTER_RE = /^(\d+)@(\[[^\]]+\]|[^:@\s]+):(\d+)$/;

/**
 * Parses Kafka's `controller.quorum.voters`: comma-separated `id@host:port`, e.g.
 * `1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093`. IPv6 hosts go in brackets.
 * Throws INVALID_CONFIG naming the key and the bad part.
 */
export function parseQuorumVoters(text: string, key = "controller.quorum.voters"): QuorumVoter[] {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new FlotillaError("INVALID_CONFIG", `${key} is empty; expected id@host:port,...`);
  const voters: QuorumVoter[] = [];
  for (const part of parts) {
    const m = VOTER_RE.exec(part);
    if (!m) throw new FlotillaError("INVALID_CONFIG", `${key}: "${part}" is not id@host:port`);
    const id = Number(m[1]);
    const host = m[2]!.replace(/^\[|\]$/g, "");
    const port = Number(m[3]);
    if (!Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff) throw new FlotillaError("INVALID_CONFIG", `${key}: node id in "${part}" must be between 1 and 2^32-1`);
    if (port < 1 || port > 65535) throw new FlotillaError("INVALID_CONFIG", `${key}: port in "${part}" must be between 1 and 65535`);
    if (voters.some((v) => v.id === id)) throw new FlotillaError("INVALID_CONFIG", `${key}: node id ${id} appears twice`);
    voters.push({ id, host, port });
  }
  return voters;
}
