/**
 * Where acks=all produces wait for replication (Kafka's DelayedProduce purgatory). A
 * produce parks on its partition after the leader's append with the offset the high
 * watermark must reach (its last offset + 1) and the leader epoch it appended in. Each
 * HW move, ISR change or role change of the partition calls `check`, which answers the
 * waits whose outcome is known (Partition.produceOutcome): replicated, replicated by
 * fewer than min.insync.replicas, or leadership lost. The rest answer REQUEST_TIMED_OUT
 * after the request's timeout_ms.
 *
 * Bounded: at most `parkedMax` produces wait at once; one more is answered
 * REQUEST_TIMED_OUT at once (its records are appended; the idempotent producer's retry is
 * answered as a duplicate).
 */
import { FlotillaError } from "@flotilla/common";
import type { Partition } from "./partition.js";

interface Waiter {
  readonly requiredOffset: number;
  readonly leaderEpoch: number;
  readonly finish: (outcome: "ok" | FlotillaError) => void;
}

export class ProducePurgatory {
  private readonly byPartition = new Map<Partition, Set<Waiter>>();
  private parked = 0;
  private closed = false;

  constructor(private readonly parkedMax: number) {}

  get size(): number {
    return this.parked;
  }

  /** Resolves once the HW of `p` reaches `requiredOffset`; rejects with the error to answer. */
  wait(p: Partition, requiredOffset: number, leaderEpoch: number, timeoutMs: number): Promise<void> {
    const now = p.produceOutcome(requiredOffset, leaderEpoch);
    if (now === "ok") return Promise.resolve();
    if (now) return Promise.reject(now);
    if (this.closed) return Promise.reject(new FlotillaError("SHUTTING_DOWN", `broker is shutting down before ${p.key} replicated offset ${requiredOffset - 1}`));
    if (this.parked >= this.parkedMax) {
      return Promise.reject(new FlotillaError("REQUEST_TIMED_OUT", `${this.parkedMax} acks=all produces already wait for replication; ${p.key} was appended but not yet replicated`));
    }
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(
        () => finish(new FlotillaError("REQUEST_TIMED_OUT", `${p.key} did not replicate offset ${requiredOffset - 1} to the ISR within ${timeoutMs} ms (high watermark ${p.highWatermark})`)),
        Math.max(0, timeoutMs),
      );
      const finish = (outcome: "ok" | FlotillaError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const set = this.byPartition.get(p);
        set?.delete(waiter);
        if (set && set.size === 0) this.byPartition.delete(p);
        this.parked--;
        if (outcome === "ok") resolve();
        else reject(outcome);
      };
      const waiter: Waiter = { requiredOffset, leaderEpoch, finish };
      this.parked++;
      let set = this.byPartition.get(p);
      if (!set) this.byPartition.set(p, (set = new Set()));
      set.add(waiter);
    });
  }

  /** Answers the waits on `p` whose outcome is now known. */
  check(p: Partition): void {
    const set = this.byPartition.get(p);
    if (!set) return;
    for (const w of [...set]) {
      const outcome = p.produceOutcome(w.requiredOffset, w.leaderEpoch);
      if (outcome !== undefined) w.finish(outcome);
    }
  }

  /** Answers every wait with SHUTTING_DOWN and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const set of [...this.byPartition.values()]) {
      for (const w of [...set]) w.finish(new FlotillaError("SHUTTING_DOWN", "broker is shutting down before the records were replicated"));
    }
  }
}
