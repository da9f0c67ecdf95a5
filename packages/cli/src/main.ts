/**
 * The `flotilla` command: `node --import tsx packages/cli/src/main.ts <command>`, or
 * `pnpm flotilla <command>`. Exit codes: 0 ok, 1 the operation failed, 2 usage or
 * configuration error (see format.ts).
 */
import { processIo } from "./io.js";
import { runCli } from "./program.js";

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
// Everything is closed by now; if a stray handle still holds the event loop, do not hang
// a script on it. The timer is unref'd, so it does not itself keep the process alive.
setTimeout(() => process.exit(code), 2000).unref();
