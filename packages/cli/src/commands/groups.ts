import { Command } from "commander";
import { FlotillaError } from "@flotilla/common";
import { Admin, GroupAdmin, type GroupDescription, type GroupOffset } from "@flotilla/client";
import { parseIntFlag, UsageError } from "../format.js";
import { writeOut, type CliIo } from "../io.js";
import { addClientOptions, clientLogger, type ClientFlags } from "./client-options.js";

/** One row of `groups describe`, as kafka-consumer-groups.sh --describe prints it. */
export interface GroupDescribeRow {
  group: string;
  topic: string;
  partition: number | null;
  currentOffset: number | null;
  logEndOffset: number | null;
  lag: number | null;
  consumerId: string | null;
  host: string | null;
  clientId: string | null;
}

/**
 * The rows of `groups describe`: one per partition that is assigned to a member or has a
 * committed offset (assigned first, sorted by topic and partition), plus one per member
 * without partitions. LAG = LOG-END-OFFSET - CURRENT-OFFSET; unknown values are null.
 */
export function describeRows(description: GroupDescription, committed: readonly GroupOffset[], logEndOffsets: ReadonlyMap<string, number>): GroupDescribeRow[] {
  const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
  const committedBy = new Map(committed.filter((c) => c.offset >= 0).map((c) => [key(c.topic, c.partition), c.offset]));
  const rows: GroupDescribeRow[] = [];
  const seen = new Set<string>();
  const row = (topic: string, partition: number, member: GroupDescription["members"][number] | undefined): GroupDescribeRow => {
    const currentOffset = committedBy.get(key(topic, partition)) ?? null;
    const logEndOffset = logEndOffsets.get(key(topic, partition)) ?? null;
    return {
      group: description.groupId,
      topic,
      partition,
      currentOffset,
      logEndOffset,
      lag: currentOffset !== null && logEndOffset !== null ? Math.max(0, logEndOffset - currentOffset) : null,
      consumerId: member?.memberId ?? null,
      host: member?.clientHost ?? null,
      clientId: member?.clientId ?? null,
    };
  };
  const members = [...description.members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  for (const m of members) {
    for (const tp of m.assignment) {
      seen.add(key(tp.topic, tp.partition));
      rows.push(row(tp.topic, tp.partition, m));
    }
  }
  const unassigned = committed.filter((c) => !seen.has(key(c.topic, c.partition)));
  for (const c of unassigned) rows.push(row(c.topic, c.partition, undefined));
  rows.sort((a, b) => (a.topic === b.topic ? (a.partition ?? -1) - (b.partition ?? -1) : a.topic < b.topic ? -1 : 1));
  for (const m of members) {
    if (m.assignment.length === 0) rows.push({ group: description.groupId, topic: "", partition: null, currentOffset: null, logEndOffset: null, lag: null, consumerId: m.memberId, host: m.clientHost, clientId: m.clientId });
  }
  return rows;
}

/** Left-aligned columns separated by two spaces; null prints "-" as Kafka's tool does. */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => (c === null || c === "" ? "-" : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join("  ")).join("\n") + "\n";
}

const DESCRIBE_HEADER = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"];

export type ResetSpec = { kind: "earliest" } | { kind: "latest" } | { kind: "offset"; offset: number } | { kind: "datetime"; timestampMs: number };

/** The one reset target the flags name; none or several is a usage error. */
export function resetSpecFromFlags(flags: { toEarliest?: boolean; toLatest?: boolean; toOffset?: string; toDatetime?: string }): ResetSpec {
  const specs: ResetSpec[] = [];
  if (flags.toEarliest) specs.push({ kind: "earliest" });
  if (flags.toLatest) specs.push({ kind: "latest" });
  if (flags.toOffset !== undefined) specs.push({ kind: "offset", offset: parseIntFlag(flags.toOffset, "--to-offset") });
  if (flags.toDatetime !== undefined) {
    const timestampMs = Date.parse(flags.toDatetime);
    if (!Number.isFinite(timestampMs)) throw new UsageError(`--to-datetime expects an ISO-8601 date and time (e.g. 2024-01-31T12:00:00Z), got "${flags.toDatetime}"`);
    specs.push({ kind: "datetime", timestampMs });
  }
  if (specs.length !== 1) throw new UsageError("give exactly one of --to-earliest, --to-latest, --to-offset <n>, --to-datetime <iso>");
  return specs[0] as ResetSpec;
}

/**
 * New offset per partition. --to-offset is clamped into [log start, high watermark], as
 * Kafka's tool does, so the group never starts outside the log; --to-datetime takes the
 * first offset at or after the time, or the end when there is none.
 */
export function planReset(spec: ResetSpec, ranges: readonly { partition: number; low: number; high: number }[], byTime: ReadonlyMap<number, number>): { partition: number; offset: number }[] {
  return ranges.map((r) => {
    switch (spec.kind) {
      case "earliest":
        return { partition: r.partition, offset: r.low };
      case "latest":
        return { partition: r.partition, offset: r.high };
      case "offset":
        return { partition: r.partition, offset: Math.min(Math.max(spec.offset, r.low), r.high) };
      case "datetime": {
        const o = byTime.get(r.partition) ?? -1;
        return { partition: r.partition, offset: o < 0 ? r.high : o };
      }
    }
  });
}

function requireGroup(group: string | undefined): string {
  if (!group) throw new UsageError("--group is required");
  return group;
}

function checkFormat(format: string): "text" | "json" {
  if (format !== "text" && format !== "json") throw new UsageError(`--format must be text or json, got "${format}"`);
  return format;
}

/** A GroupAdmin and an Admin for one command, closed afterwards. */
async function withAdmins<T>(flags: ClientFlags, io: CliIo, fn: (groups: GroupAdmin, admin: Admin) => Promise<T>): Promise<T> {
  const requestTimeoutMs = parseIntFlag(flags.requestTimeoutMs, "--request-timeout-ms", 1);
  const common = { bootstrapServers: flags.bootstrapServer, clientId: "flotilla-cli", requestTimeoutMs, defaultApiTimeoutMs: Math.max(requestTimeoutMs, 15_000), logger: clientLogger(io) };
  const groups = new GroupAdmin(common);
  const admin = new Admin(common);
  try {
    return await fn(groups, admin);
  } finally {
    await Promise.all([groups.close(), admin.close()]);
  }
}

/** High watermarks of every partition of these topics, keyed "topic\0partition". */
async function logEndOffsets(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const topic of topics) {
    try {
      for (const o of await admin.listOffsets(topic, "latest")) out.set(`${topic}\u0000${o.partition}`, o.offset);
    } catch (err) {
      // A deleted topic still has committed offsets; show them without a log end.
      if (!FlotillaError.is(err, "UNKNOWN_TOPIC_OR_PARTITION")) throw err;
    }
  }
  return out;
}

/** `flotilla groups list|describe|reset-offsets|delete`, after kafka-consumer-groups.sh. */
export function groupsCommand(io: CliIo): Command {
  const groups = new Command("groups").description("list, describe, reset the offsets of, and delete consumer groups");

  addClientOptions(groups.command("list").description("group ids, one per line"))
    .option("--format <text|json>", "text: the id per line; json: one object per line with state and coordinator", "text")
    .action(async (opts: ClientFlags & { format: string }) => {
      const format = checkFormat(opts.format);
      const listed = await withAdmins(opts, io, (g) => g.listGroups());
      const text = listed.map((g) => (format === "json" ? JSON.stringify(g) : g.groupId)).join("\n");
      await writeOut(io.stdout, text.length > 0 ? `${text}\n` : "");
    });

  addClientOptions(groups.command("describe").description("per partition: committed offset, log end offset, lag and owning member"))
    .option("--group <id>", "the group")
    .option("--format <text|json>", "text: a table; json: one object per row", "text")
    .action(async (opts: ClientFlags & { group?: string; format: string }) => {
      const group = requireGroup(opts.group);
      const format = checkFormat(opts.format);
      const { description, rows } = await withAdmins(opts, io, async (g, admin) => {
        const description = await g.describeGroup(group);
        const committed = await g.fetchOffsets(group);
        const topics = [...new Set([...committed.map((c) => c.topic), ...description.members.flatMap((m) => m.assignment.map((tp) => tp.topic))])].sort();
        return { description, rows: describeRows(description, committed, await logEndOffsets(admin, topics)) };
      });
      if (description.state === "Dead" && rows.length === 0) throw new FlotillaError("GROUP_ID_NOT_FOUND", `consumer group "${group}" does not exist`);
      if (format === "json") {
        await writeOut(io.stdout, rows.map((r) => `${JSON.stringify({ ...r, state: description.state })}\n`).join(""));
        return;
      }
      if (description.members.length === 0) await writeOut(io.stderr, `Consumer group '${group}' has no active members.\n`);
      const table = formatTable(
        DESCRIBE_HEADER,
        rows.map((r) => [r.group, r.topic, r.partition, r.currentOffset, r.logEndOffset, r.lag, r.consumerId, r.host, r.clientId]),
      );
      await writeOut(io.stdout, table);
    });

  addClientOptions(groups.command("reset-offsets").description("set a group's committed offsets of a topic (only while the group has no active members)"))
    .option("--group <id>", "the group")
    .option("--topic <name>", "the topic whose offsets to reset (every partition)")
    .option("--to-earliest", "to the log start offset")
    .option("--to-latest", "to the log end offset (high watermark)")
    .option("--to-offset <n>", "to this offset (clamped into the log's range)")
    .option("--to-datetime <iso>", "to the first record at or after this time, e.g. 2024-01-31T12:00:00Z")
    .option("--execute", "apply the plan (without it, only print the plan)")
    .option("--format <text|json>", "output format of the plan", "text")
    .action(async (opts: ClientFlags & { group?: string; topic?: string; toEarliest?: boolean; toLatest?: boolean; toOffset?: string; toDatetime?: string; execute?: boolean; format: string }) => {
      const group = requireGroup(opts.group);
      if (!opts.topic) throw new UsageError("--topic is required");
      const topic = opts.topic;
      const spec = resetSpecFromFlags(opts);
      const format = checkFormat(opts.format);
      const plan = await withAdmins(opts, io, async (g, admin) => {
        const description = await g.describeGroup(group);
        if (description.members.length > 0) {
          throw new FlotillaError(
            "NON_EMPTY_GROUP",
            `offsets of group "${group}" can only be reset while it has no active members, but it has ${description.members.length} (state ${description.state}); stop its consumers first`,
          );
        }
        const ranges = await admin.fetchTopicOffsets(topic);
        const byTime = new Map<number, number>();
        if (spec.kind === "datetime") for (const o of await admin.listOffsets(topic, { timestamp: spec.timestampMs })) byTime.set(o.partition, o.offset);
        const plan = planReset(spec, ranges, byTime);
        if (opts.execute) await g.commitOffsets(group, plan.map((p) => ({ topic, partition: p.partition, offset: p.offset })));
        return plan;
      });
      if (format === "json") {
        await writeOut(io.stdout, plan.map((p) => `${JSON.stringify({ group, topic, partition: p.partition, newOffset: p.offset })}\n`).join(""));
      } else {
        await writeOut(io.stdout, formatTable(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], plan.map((p) => [group, topic, p.partition, p.offset])));
      }
      if (!opts.execute) await writeOut(io.stderr, "Dry run: nothing was changed. Add --execute to apply these offsets.\n");
    });

  addClientOptions(groups.command("delete").description("delete a group without members, with its committed offsets"))
    .option("--group <id>", "the group")
    .action(async (opts: ClientFlags & { group?: string }) => {
      const group = requireGroup(opts.group);
      await withAdmins(opts, io, (g) => g.deleteGroups([group]));
      await writeOut(io.stdout, `Deleted consumer group '${group}'.\n`);
    });

  return groups;
}
