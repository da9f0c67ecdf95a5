/**
 * Timers for the group coordinator, passed in so the state machine never calls
 * setTimeout itself: the broker gives it `systemTimer`, tests a `ManualTimer` that fires
 * only when the test advances time, which makes session and rebalance timeouts
 * deterministic.
 */
import type { Clock } from "@flotilla/common";

export interface Timer {
  /** Runs `fn` once after `delayMs`; returns a function that cancels it (a no-op once it ran). */
  schedule(delayMs: number, fn: () => void): () => void;
}

/** Real timers; unref'd, so a pending session timeout never keeps the process alive. */
export const systemTimer: Timer = {
  schedule(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return () => clearTimeout(t);
  },
};

interface Task {
  readonly dueMs: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A clock and timer that move only when told to, for tests. */
export class ManualTimer implements Timer, Clock {
  private now: number;
  private seq = 0;
  private tasks: Task[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  monotonicMs(): number {
    return this.now;
  }

  /** Tasks scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.tasks.length;
  }

  schedule(delayMs: number, fn: () => void): () => void {
    const task: Task = { dueMs: this.now + Math.max(0, delayMs), seq: this.seq++, fn };
    this.tasks.push(task);
    return () => {
      this.tasks = this.tasks.filter((t) => t !== task);
    };
  }

  /** Moves time forward by `ms`, running every task that falls due, in due order (ties in schedule order). */
  advance(ms: number): void {
    const target = this.now + ms;
    // Each turn runs (and removes) one task; tasks scheduled by tasks run too when due in time.
    for (let i = 0; i < 1_000_000; i++) {
      let next: Task | undefined;
      for (const t of this.tasks) if (t.dueMs <= target && (!next || t.dueMs < next.dueMs || (t.dueMs === next.dueMs && t.seq < next.seq))) next = t;
      if (!next) break;
      this.tasks = this.tasks.filter((t) => t !== next);
      this.now = Math.max(this.now, next.dueMs);
      next.fn();
    }
    this.now = target;
  }
}
