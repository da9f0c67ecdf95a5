/**
 * One-line renderings of messages, entries and Readies, for the simulator's trace and the
 * transcript tests. Stable text: the transcripts are compared byte for byte.
 */
import type { Entry, Message, Ready } from "./types.js";

export function formatEntry(e: Entry): string {
  return `${e.index}/${e.term}${e.type === "noop" ? "(noop)" : ""}`;
}

export function formatEntries(entries: readonly Entry[]): string {
  if (entries.length === 0) return "[]";
  if (entries.length <= 4) return `[${entries.map(formatEntry).join(" ")}]`;
  return `[${formatEntry(entries[0]!)} .. ${formatEntry(entries[entries.length - 1]!)}] (${entries.length})`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "PreVote":
    case "Vote":
      return `${head} last=${m.logIndex}/${m.logTerm}${m.context === undefined ? "" : ` ctx=${m.context}`}`;
    case "PreVoteResp":
    case "VoteResp":
      return `${head} ${m.reject ? "rejected" : "granted"}`;
    case "Append":
      return `${head} prev=${m.logIndex}/${m.logTerm} entries=${formatEntries(m.entries)} commit=${m.commit}`;
    case "AppendResp":
      return m.reject
        ? `${head} rejected prev=${m.logIndex} hint=${m.hintIndex}/${m.hintTerm}`
        : `${head} match=${m.hintIndex}`;
    case "Heartbeat":
      return `${head} commit=${m.commit}${m.context === undefined ? "" : ` ctx=${m.context}`}`;
    case "HeartbeatResp":
      return `${head}${m.context === undefined ? "" : ` ctx=${m.context}`}`;
    case "InstallSnapshot":
      return `${head} snapshot=${m.snapshot?.meta.index}/${m.snapshot?.meta.term}`;
    case "InstallSnapshotResp":
      return `${head} commit=${m.hintIndex}`;
    case "TimeoutNow":
      return head;
  }
}

/** The Ready as indented lines (without its messages, which callers usually print as sent). */
export function formatReady(rd: Ready): string[] {
  const lines: string[] = [];
  if (rd.softState) lines.push(`soft: role=${rd.softState.role} term=${rd.softState.term} leader=${rd.softState.leader}`);
  if (rd.hardState) lines.push(`hard: term=${rd.hardState.term} vote=${rd.hardState.vote} commit=${rd.hardState.commit}`);
  if (rd.snapshot) lines.push(`snapshot: ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`);
  if (rd.entries.length > 0) lines.push(`entries: ${formatEntries(rd.entries)}`);
  if (rd.committedEntries.length > 0) lines.push(`committed: ${formatEntries(rd.committedEntries)}`);
  for (const rs of rd.readStates) lines.push(`read-state: ctx=${rs.context} index=${rs.index}`);
  return lines;
}
