/**
 * docs/KAFKA.md's API table must say what the code serves: one row per Kafka API spec
 * exported by @flotilla/protocol/kafka (key, name, min and max version), every ApiKey has a
 * spec, and the kafkajs column is the highest version both kafkajs (the installed release,
 * read from its request table) and Flotilla support. Changing a codec's range without the
 * doc, or the doc without the codec, fails here. (The kcat column is checked against a live
 * kcat in interop.test.ts.)
 */
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import * as kafkaProtocol from "../../packages/protocol/src/kafka/index.js";
import { ApiKey, type AnyKafkaApiSpec } from "../../packages/protocol/src/kafka/index.js";
import { REPO_ROOT } from "../helpers/processes.js";
import { readKafkaDocTable, type KafkaDocRow } from "./helpers.js";

function isSpec(v: unknown): v is AnyKafkaApiSpec {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Partial<AnyKafkaApiSpec>;
  return typeof s.apiKey === "number" && typeof s.minVersion === "number" && typeof s.maxVersion === "number" && typeof s.decodeRequest === "function";
}

const docTable = (): KafkaDocRow[] => readKafkaDocTable(path.join(REPO_ROOT, "docs/KAFKA.md"));

/** kafkajs's implemented versions of one API (its request table, keyed by directory name). */
function kafkajsVersions(apiName: string): number[] {
  const require = createRequire(import.meta.url);
  const dir = apiName[0]!.toLowerCase() + apiName.slice(1);
  const mod = require(`kafkajs/src/protocol/requests/${dir}/index.js`) as { versions: string[] };
  return mod.versions.map(Number);
}

describe("docs/KAFKA.md API table", () => {
  const specs = Object.values(kafkaProtocol)
    .filter(isSpec)
    .sort((a, b) => a.apiKey - b.apiKey);

  it("has one spec per Kafka API key Flotilla names", () => {
    expect(specs.map((s) => s.apiKey)).toEqual(Object.values(ApiKey).sort((a, b) => a - b));
    for (const s of specs) expect(ApiKey[s.name as keyof typeof ApiKey], `ApiKey.${s.name}`).toBe(s.apiKey);
  });

  it("lists exactly the served APIs with their key and version range", () => {
    const rows = docTable();
    expect(rows.map((r) => ({ name: r.name, key: r.key, min: r.min, max: r.max }))).toEqual(
      specs.map((s) => ({ name: s.name, key: s.apiKey, min: s.minVersion, max: s.maxVersion })),
    );
  });

  it("gives, per API, the highest version both the installed kafkajs and Flotilla support", () => {
    for (const r of docTable()) {
      const common = kafkajsVersions(r.name).filter((v) => v >= r.min && v <= r.max);
      expect(common.length, `kafkajs shares a version of ${r.name} with Flotilla`).toBeGreaterThan(0);
      expect(r.kafkajs, `kafkajs column of ${r.name}`).toBe(Math.max(...common));
    }
  });

  // The kcat column itself is checked against a live kcat in interop.test.ts.
  it("gives kcat versions inside the served ranges", () => {
    for (const r of docTable()) {
      if (r.kcat === undefined) continue;
      expect(r.kcat, `kcat column of ${r.name}`).toBeGreaterThanOrEqual(r.min);
      expect(r.kcat, `kcat column of ${r.name}`).toBeLessThanOrEqual(r.max);
    }
  });
});
