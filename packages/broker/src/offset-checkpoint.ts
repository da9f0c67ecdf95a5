/**
 * The high-watermark checkpoint of a log dir (Kafka's `replication-offset-checkpoint`), so
 * that a restarted broker does not start every partition's HW at its log start.
 *
 * File `replication-offset-checkpoint` in each log dir, UTF-8 text, Kafka's layout:
 *
 *     0                  <- format version
 *     2                  <- number of entries
 *     orders 0 1520      <- "topic partition offset" (topic names hold no spaces)
 *     orders 1 1493
 *
 * Written whole to a `.tmp` file, fsynced, renamed over the old one and the directory
 * fsynced. A missing file is empty; a malformed one is ignored with a warning (the HW is
 * only a starting point: it is recomputed from the ISR, so losing it costs no data).
 */
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { FlotillaError } from "@flotilla/common";

export const HIGH_WATERMARK_CHECKPOINT_FILE = "replication-offset-checkpoint";
const VERSION = 0;

/** "topic-partition" -> high watermark; throws STORAGE_CORRUPT naming the file when malformed. */
export async function readOffsetCheckpoint(logDir: string): Promise<Map<string, number>> {
  const path = join(logDir, HIGH_WATERMARK_CHECKPOINT_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return new Map();
    throw new FlotillaError("KAFKA_STORAGE_ERROR", `reading ${path} failed: ${(err as Error).message}`, { cause: err });
  }
  const bad = (why: string) => new FlotillaError("STORAGE_CORRUPT", `${path}: ${why}`);
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length < 2 || Number(lines[0]) !== VERSION) throw bad(`expected version ${VERSION} and a count`);
  const count = Number(lines[1]);
  if (count !== lines.length - 2) throw bad(`count ${lines[1]} does not match ${lines.length - 2} entries`);
  const out = new Map<string, number>();
  for (const line of lines.slice(2)) {
    const parts = line.trim().split(/\s+/);
    const partition = Number(parts[1]);
    const offset = Number(parts[2]);
    if (parts.length !== 3 || !Number.isSafeInteger(partition) || !Number.isSafeInteger(offset) || partition < 0 || offset < 0) throw bad(`entry "${line}" is not "topic partition offset"`);
    out.set(`${parts[0]}-${partition}`, offset);
  }
  return out;
}

export async function writeOffsetCheckpoint(logDir: string, entries: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
  const path = join(logDir, HIGH_WATERMARK_CHECKPOINT_FILE);
  const tmp = `${path}.tmp`;
  const sorted = [...entries].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  const text = [String(VERSION), String(sorted.length), ...sorted.map((e) => `${e.topic} ${e.partition} ${e.offset}`)].join("\n") + "\n";
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    const dir = await open(logDir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    throw new FlotillaError("KAFKA_STORAGE_ERROR", `writing ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}
