/**
 * Where long-poll fetches wait (Kafka's fetch purgatory): a fetch that cannot answer yet
 * parks on the keys of its partitions ("topic-partition") and is woken when one of them
 * gets new committed data, when its time is up, when its caller goes away, or when the
 * broker shuts down. Nothing polls: appends call `wake`.
 *
 * Bounded: at most `parkedMax` fetches wait at once. A fetch that finds the purgatory
 * full is answered at once with what is there (an empty answer is a valid one; the
 * client simply fetches again), so a flood of consumers cannot grow memory or timers
 * without bound.
 */
export type WakeReason = "woken" | "timeout" | "aborted" | "full" | "closed";

interface Parked {
  readonly keys: readonly string[];
  readonly finish: (reason: WakeReason) => void;
}

export class FetchPurgatory {
  private readonly byKey = new Map<string, Set<Parked>>();
  private parked = 0;
  private closed = false;

  constructor(private readonly parkedMax: number) {}

  /** Number of fetches waiting now. */
  get size(): number {
    return this.parked;
  }

  /** Waits until a key is woken, `timeoutMs` passes, `signal` aborts, or close(). */
  wait(keys: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<WakeReason> {
    if (this.closed) return Promise.resolve("closed");
    if (signal?.aborted) return Promise.resolve("aborted");
    if (this.parked >= this.parkedMax) return Promise.resolve("full");
    return new Promise<WakeReason>((resolve) => {
      let done = false;
      const onAbort = () => finish("aborted");
      const timer = setTimeout(() => finish("timeout"), Math.max(0, timeoutMs));
      const entry: Parked = { keys, finish: (reason) => finish(reason) };
      const finish = (reason: WakeReason) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        for (const key of keys) {
          const set = this.byKey.get(key);
          if (!set) continue;
          set.delete(entry);
          if (set.size === 0) this.byKey.delete(key);
        }
        this.parked--;
        resolve(reason);
      };
      this.parked++;
      for (const key of keys) {
        let set = this.byKey.get(key);
        if (!set) this.byKey.set(key, (set = new Set()));
        set.add(entry);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Wakes every fetch parked on `key`. */
  wake(key: string): void {
    const set = this.byKey.get(key);
    if (!set) return;
    for (const entry of [...set]) entry.finish("woken");
  }

  /** Wakes every parked fetch with "closed" and refuses to park new ones. */
  close(): void {
    this.closed = true;
    for (const set of [...this.byKey.values()]) for (const entry of [...set]) entry.finish("closed");
  }
}
