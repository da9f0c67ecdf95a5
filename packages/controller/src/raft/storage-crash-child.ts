/**
 * Child process for the storage crash test (storage.test.ts): opens the LevelDB Raft
 * storage in argv[2] and persists Ready-like writes back to back, printing
 * `persisted <index>` after each write resolves, until it is killed. The test SIGKILLs
 * it mid-stream and checks that every write it reported as durable is there on reopen.
 */
import { openLevelRaftStorage } from "./storage-level.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: storage-crash-child.ts <dir>");
const storage = await openLevelRaftStorage(dir);
let index = storage.log.lastIndex();
const term = storage.hardState.current()?.term ?? 1;
// Bounded: the test kills it long before; if not, it stops on its own.
for (let i = 0; i < 100_000; i++) {
  index += 1;
  const data = new TextEncoder().encode(`entry-${index}`);
  await storage.persist({ entries: [{ term, index, type: "normal", data }], hardState: { term, vote: 1, commit: index } });
  process.stdout.write(`persisted ${index}\n`);
}
