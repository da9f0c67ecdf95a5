/**
 * `meta.properties` in every log dir (Kafka's format, version 1):
 *
 *   version=1
 *   cluster.id=<22-character id>
 *   node.id=<node.id>
 *
 * It ties a directory to one cluster and one node, so that a node started with another
 * node's disk, or a disk from another cluster, stops instead of mixing data. The first
 * start writes it (atomically: temporary file, fsync, rename); later starts check it.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { FlotillaError } from "@flotilla/common";
import { getProperties } from "properties-file";

export const META_PROPERTIES_FILE = "meta.properties";

interface MetaProperties {
  readonly clusterId: string;
  readonly nodeId: number;
}

async function readMeta(dir: string): Promise<MetaProperties | undefined> {
  const file = path.join(dir, META_PROPERTIES_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new FlotillaError("KAFKA_STORAGE_ERROR", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const props = getProperties(text);
  const nodeId = Number(props["node.id"]);
  if (props.version !== "1" || !props["cluster.id"] || !Number.isInteger(nodeId)) {
    throw new FlotillaError("STORAGE_CORRUPT", `${file} is not a version 1 meta.properties with cluster.id and node.id`);
  }
  return { clusterId: props["cluster.id"], nodeId };
}

async function writeMeta(dir: string, meta: MetaProperties): Promise<void> {
  const file = path.join(dir, META_PROPERTIES_FILE);
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(`#Written by Flotilla\nversion=1\ncluster.id=${meta.clusterId}\nnode.id=${meta.nodeId}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** A new cluster id: 16 random bytes in base64url, like Kafka's `kafka-storage random-uuid`. */
export function newClusterId(): string {
  let id = randomBytes(16).toString("base64url");
  while (id.startsWith("-")) id = randomBytes(16).toString("base64url");
  return id;
}

/**
 * Checks (and on first use writes) meta.properties in each directory; returns the
 * cluster id. `configuredClusterId` (cluster.id) must match what the dirs hold.
 */
export async function ensureMetaProperties(dirs: readonly string[], nodeId: number, configuredClusterId: string | null): Promise<string> {
  const found = new Map<string, MetaProperties>();
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    const meta = await readMeta(dir);
    if (meta) found.set(dir, meta);
  }
  let clusterId = configuredClusterId;
  for (const [dir, meta] of found) {
    if (meta.nodeId !== nodeId) {
      throw new FlotillaError("INVALID_CONFIG", `log dir ${dir} belongs to node ${meta.nodeId} (its meta.properties), but node.id is ${nodeId}`);
    }
    if (clusterId !== null && meta.clusterId !== clusterId) {
      throw new FlotillaError("INCONSISTENT_CLUSTER_ID", `log dir ${dir} belongs to cluster ${meta.clusterId}, but this node is in cluster ${clusterId}${configuredClusterId ? " (cluster.id)" : ""}`);
    }
    clusterId = meta.clusterId;
  }
  clusterId ??= newClusterId();
  for (const dir of dirs) if (!found.has(dir)) await writeMeta(dir, { clusterId, nodeId });
  return clusterId;
}
