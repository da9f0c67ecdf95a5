import { FlotillaError, type ErrorName } from "@flotilla/common";
import { COORDINATOR_KEY_TYPE_GROUP, errorFromFields } from "@flotilla/protocol";
import type { Cluster } from "../cluster.js";
import type { ResolvedCommon } from "../config.js";
import { withRetries } from "../retry.js";
import { hostPort, type CoordinatorConnection, type CoordinatorPool } from "./coordinator-connection.js";

/** Group-level errors that mean "ask FindCoordinator again". */
export const COORDINATOR_MOVED = new Set<ErrorName>(["NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"]);

/**
 * Finds and remembers the coordinator of one group. FindCoordinator goes to any broker
 * (rotating over the known brokers and the bootstrap list); NOT_COORDINATOR,
 * COORDINATOR_NOT_AVAILABLE and network errors forget the coordinator, so the next call
 * looks it up again; COORDINATOR_LOAD_IN_PROGRESS is waited out with the retry backoff.
 */
export class CoordinatorLocator {
  private known: { nodeId: number; address: string } | undefined;

  constructor(
    private readonly groupId: string,
    private readonly common: ResolvedCommon,
    private readonly cluster: Cluster,
    private readonly pool: CoordinatorPool,
  ) {}

  /** The coordinator's node id, or -1 while unknown. */
  get nodeId(): number {
    return this.known?.nodeId ?? -1;
  }

  markUnknown(reason: string): void {
    if (this.known) this.common.logger.info({ groupId: this.groupId, coordinator: this.known.nodeId, reason }, "group coordinator unknown; will look it up again");
    this.known = undefined;
  }

  /** The coordinator's connection, asking FindCoordinator (with retries until `deadlineMs`) when unknown. */
  async connection(deadlineMs: number): Promise<CoordinatorConnection> {
    if (this.known) return this.pool.get(this.known.address);
    const found = await withRetries(
      async () => {
        const address = this.cluster.anyConnection().address;
        try {
          const res = await this.pool.get(address).findCoordinator({ key: this.groupId, keyType: COORDINATOR_KEY_TYPE_GROUP }, { timeoutMs: this.common.requestTimeoutMs });
          const err = errorFromFields(res.errorCode, res.errorMessage);
          if (err) throw new FlotillaError(err.errorName, `FindCoordinator for group "${this.groupId}" at ${address}: ${res.errorMessage || err.message}`);
          return { nodeId: res.nodeId, address: hostPort(res.host, res.port) };
        } catch (e) {
          this.cluster.rotate();
          throw e;
        }
      },
      this.common.retry,
      this.common,
      { deadlineMs, onRetriableError: (e) => this.common.logger.debug({ groupId: this.groupId, err: e.message }, "FindCoordinator failed; retrying") },
    );
    this.known = found;
    this.common.logger.debug({ groupId: this.groupId, coordinator: found.nodeId, address: found.address }, "found group coordinator");
    return this.pool.get(found.address);
  }

  /**
   * Calls the coordinator and returns its response once the group-level error is not about
   * the coordinator itself. Coordinator errors (moved, loading, network) are retried with
   * backoff until `deadlineMs`, looking the coordinator up again where needed; the caller
   * handles every other error code in the response.
   */
  async call<T extends { errorCode: number; errorMessage: string }>(what: string, fn: (conn: CoordinatorConnection) => Promise<T>, deadlineMs: number, signal?: AbortSignal): Promise<T> {
    return withRetries(
      async () => {
        const conn = await this.connection(deadlineMs);
        let res: T;
        try {
          res = await fn(conn);
        } catch (e) {
          if (e instanceof FlotillaError && e.retriable) this.markUnknown(`${what}: ${e.message}`);
          throw e;
        }
        const err = errorFromFields(res.errorCode, res.errorMessage);
        if (err && COORDINATOR_MOVED.has(err.errorName)) {
          this.markUnknown(`${what}: ${err.errorName}`);
          throw new FlotillaError(err.errorName, `${what} for group "${this.groupId}": ${res.errorMessage || err.message}`);
        }
        if (err?.errorName === "COORDINATOR_LOAD_IN_PROGRESS") throw new FlotillaError(err.errorName, `${what} for group "${this.groupId}": ${res.errorMessage || err.message}`);
        return res;
      },
      this.common.retry,
      this.common,
      signal ? { deadlineMs, signal } : { deadlineMs },
    );
  }
}
