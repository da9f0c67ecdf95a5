export { buildProgram, runCli } from "./program.js";
export { ExitCode, UsageError, describeError, formatRecord, formatTopicDescription, splitLine, parseKeyValues } from "./format.js";
export { processIo, type CliIo } from "./io.js";
