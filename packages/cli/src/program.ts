import { Command, CommanderError } from "commander";
import { consumeCommand } from "./commands/consume.js";
import { groupsCommand } from "./commands/groups.js";
import { perfCommand } from "./commands/perf.js";
import { produceCommand } from "./commands/produce.js";
import { clusterCommand } from "./commands/cluster.js";
import { serverCommand } from "./commands/server.js";
import { localClusterCommand } from "./commands/start.js";
import { topicsCommand } from "./commands/topics.js";
import { describeError, ExitCode } from "./format.js";
import type { CliIo } from "./io.js";

/** The `flotilla` command tree. Errors are thrown to runCli, which maps them to exit codes. */
export function buildProgram(io: CliIo): Command {
  const program = new Command("flotilla")
    .description("Flotilla: a Kafka-style distributed log. Run a server, manage topics, produce and consume records.")
    .showHelpAfterError("(run with --help for usage)");
  program.addCommand(serverCommand(io));
  program.addCommand(localClusterCommand(io));
  program.addCommand(topicsCommand(io));
  program.addCommand(produceCommand(io));
  program.addCommand(consumeCommand(io));
  program.addCommand(clusterCommand(io));
  program.addCommand(groupsCommand(io));
  program.addCommand(perfCommand(io));
  // Usage errors are thrown (exitOverride) instead of exiting inside commander, and their
  // text goes to stderr; every subcommand inherits both settings.
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is usage (exit 2).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const { exitCode, message } = describeError(err);
    io.stderr.write(`${message}\n`);
    return exitCode;
  }
}
