import type { Readable, Writable } from "node:stream";

/** The process's streams and environment, passed in so commands do not reach for globals. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * Calls `handler` on the first SIGINT or SIGTERM; a second signal exits at once with
   * 128 + signal number, for a shutdown that hangs. Returns a function that unregisters.
   */
  onShutdownSignal(handler: (signal: NodeJS.Signals) => void): () => void;
}

export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    onShutdownSignal(handler) {
      let seen = false;
      const listener = (signal: NodeJS.Signals): void => {
        if (seen) process.exit(128 + (signal === "SIGINT" ? 2 : 15));
        seen = true;
        handler(signal);
      };
      process.on("SIGINT", listener);
      process.on("SIGTERM", listener);
      return () => {
        process.off("SIGINT", listener);
        process.off("SIGTERM", listener);
      };
    },
  };
}

/** Writes text and waits while the stream's buffer is full, so large outputs do not pile up in memory. */
export async function writeOut(stream: Writable, text: string): Promise<void> {
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
    stream.once("error", done);
  });
}
