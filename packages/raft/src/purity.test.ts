import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// The core must stay a pure state machine (DESIGN.md, STYLE.md): no I/O, clock or
// randomness of its own. The simulator and tests may use node:*; these files may not.
const CORE_FILES = ["core.ts", "config.ts", "log.ts", "progress.ts", "read-only.ts", "types.ts", "format.ts", "index.ts"];
const FORBIDDEN = [/from "node:/, /from "(@grpc|level|classic-level|pino)/, /@flotilla\/common\/logger/, /Date\.now/, /Math\.random/, /setTimeout|setInterval|setImmediate/, /performance\.now/, /process\./];

describe("the Raft core is pure", () => {
  for (const file of CORE_FILES) {
    it(`${file} uses no I/O, clock or ambient randomness`, () => {
      // Comments may name what is forbidden; code may not.
      const source = readFileSync(new URL(`./${file}`, import.meta.url), "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/\/\/.*$/gm, "");
      for (const pattern of FORBIDDEN) expect({ file, match: source.match(pattern)?.[0] }).toEqual({ file, match: undefined });
    });
  }
});
