import { assert } from "@flotilla/common";

/** Runs async sections one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section, section);
    // The chain must survive a failed section; the caller still sees the failure via `result`.
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * A readers-writer lock that prefers writers: once a writer waits, new readers queue behind
 * it, so a steady stream of fetches cannot starve a truncation or a retention delete.
 * Waiters are woken in arrival order.
 */
export class ReadWriteLock {
  private readers = 0;
  private writing = false;
  private readonly queue: { kind: "read" | "write"; wake: () => void }[] = [];

  async read<T>(section: () => Promise<T>): Promise<T> {
    if (this.writing || this.queue.length > 0) {
      await new Promise<void>((wake) => this.queue.push({ kind: "read", wake }));
    } else {
      this.readers++;
    }
    try {
      return await section();
    } finally {
      this.readers--;
      this.drain();
    }
  }

  async write<T>(section: () => Promise<T>): Promise<T> {
    if (this.writing || this.readers > 0 || this.queue.length > 0) {
      await new Promise<void>((wake) => this.queue.push({ kind: "write", wake }));
    } else {
      this.writing = true;
    }
    try {
      return await section();
    } finally {
      this.writing = false;
      this.drain();
    }
  }

  private drain(): void {
    assert(this.readers >= 0, "reader count went negative");
    if (this.writing) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.kind === "write") {
        if (this.readers > 0) return;
        this.queue.shift();
        this.writing = true;
        head.wake();
        return;
      }
      this.queue.shift();
      this.readers++;
      head.wake();
    }
  }
}
