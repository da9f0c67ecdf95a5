import * as grpc from "@grpc/grpc-js";
import { ErrorCodes, FlotillaError, type ErrorName } from "@flotilla/common";
import {
  BROKER_PROTO,
  BROKER_SERVICE,
  EARLIEST_TIMESTAMP,
  GRPC_CHANNEL_OPTIONS,
  pipelineHandler,
  readBatchHeader,
  serviceClientCtor,
  setBaseOffset,
  toServiceError,
  validateBatches,
  type BrokerApi,
  type FetchResponse,
  type MetadataResponse,
  type ProduceResponse,
} from "@flotilla/protocol";

/**
 * A one-node broker held in memory, serving the real gRPC Broker service on 127.0.0.1, for
 * the client's own tests: it stores batches as sent (offsets assigned by rewriting
 * baseOffset, as the real broker does) and serves them back. Faults are injected per call
 * with `failNext`, to drive the client's retry and metadata paths; `dropNextResponse` applies
 * a call and then fails it as if the answer was lost. Idempotent batches are checked as the
 * real leader does, in a reduced form: a retry of one of a producer's last 5 batches gets
 * its original offsets, any other sequence but the next is OUT_OF_ORDER_SEQUENCE_NUMBER, an
 * older epoch is INVALID_PRODUCER_EPOCH. It is not the broker: no disk, no replication, no
 * config.
 */
interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
}

export class MemoryBroker {
  readonly topics = new Map<string, StoredBatch[][]>();
  /** Queued faults per RPC name: the next calls fail with these per-partition (or whole-call) errors. */
  private readonly faults = new Map<string, { error: ErrorName; wholeCall: boolean }[]>();
  readonly calls = new Map<string, number>();
  /** Each Produce request as received: partition -> number of batches. */
  readonly produceLog: { topic: string; partition: number; batches: number }[][] = [];
  /** Partitions ("topic/partition") reported without a leader in Metadata. */
  readonly leaderless = new Set<string>();
  private server: grpc.Server | undefined;
  port = 0;
  private waiters: (() => void)[] = [];
  /** Calls (by RPC name) to apply and then answer with a whole-call error, as if the response was lost. */
  private readonly dropped = new Map<string, number>();
  /** Idempotent producers per "topic/partition/producerId". */
  private readonly producerStates = new Map<string, { epoch: number; batches: { baseSequence: number; lastSequence: number; baseOffset: number }[] }>();
  private nextProducerId = 1000;

  /** The next `times` calls of `rpc` are applied, then answered with NETWORK_EXCEPTION: a lost response. */
  dropNextResponse(rpc: "produce" | "initProducerId", times = 1): void {
    this.dropped.set(rpc, (this.dropped.get(rpc) ?? 0) + times);
  }

  /** Forgets every producer's sequences on a partition, as a leader that lost them would. */
  forgetProducers(topic: string, partition: number): void {
    for (const k of [...this.producerStates.keys()]) if (k.startsWith(`${topic}/${partition}/`)) this.producerStates.delete(k);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  createTopic(name: string, numPartitions: number): void {
    this.topics.set(
      name,
      Array.from({ length: numPartitions }, () => []),
    );
  }

  /** The next `times` calls of `rpc` fail with `error`: per partition, or as a gRPC status when wholeCall. */
  failNext(rpc: "produce" | "fetch" | "metadata" | "listOffsets", error: ErrorName, options: { times?: number; wholeCall?: boolean } = {}): void {
    const list = this.faults.get(rpc) ?? [];
    for (let i = 0; i < (options.times ?? 1); i++) list.push({ error, wholeCall: options.wholeCall ?? false });
    this.faults.set(rpc, list);
  }

  logEndOffset(topic: string, partition: number): number {
    const batches = this.topics.get(topic)?.[partition] ?? [];
    return batches.length === 0 ? 0 : (batches[batches.length - 1] as StoredBatch).lastOffset + 1;
  }

  async start(): Promise<void> {
    const server = new grpc.Server({
      "grpc.max_receive_message_length": GRPC_CHANNEL_OPTIONS["grpc.max_receive_message_length"],
      "grpc.max_send_message_length": GRPC_CHANNEL_OPTIONS["grpc.max_send_message_length"],
    });
    const api: BrokerApi = {
      produce: async (req) => this.produce(req),
      fetch: async (req) => this.fetch(req),
      listOffsets: async (req) => ({
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => {
            const fault = this.takeFault("listOffsets");
            if (fault) return { partition: p.partition, errorCode: ErrorCodes[fault].code, errorMessage: fault, timestamp: -1, offset: -1, leaderEpoch: -1 };
            if (!this.topics.get(t.name)?.[p.partition]) return { partition: p.partition, errorCode: 3, errorMessage: "unknown", timestamp: -1, offset: -1, leaderEpoch: -1 };
            if (p.timestamp >= 0) {
              // Per batch, as the real broker answers: the first batch whose max timestamp is >= the target.
              const hit = this.topics.get(t.name)?.[p.partition]?.find((b) => readBatchHeader(b.bytes).maxTimestamp >= p.timestamp);
              return { partition: p.partition, errorCode: 0, errorMessage: "", timestamp: hit ? readBatchHeader(hit.bytes).maxTimestamp : -1, offset: hit ? hit.baseOffset : -1, leaderEpoch: 0 };
            }
            const offset = p.timestamp === EARLIEST_TIMESTAMP ? 0 : this.logEndOffset(t.name, p.partition);
            return { partition: p.partition, errorCode: 0, errorMessage: "", timestamp: -1, offset, leaderEpoch: 0 };
          }),
        })),
      }),
      metadata: async (req) => this.metadata(req.topics),
      createTopics: async (req) => ({
        topics: req.topics.map((t) => {
          if (this.topics.has(t.name)) return { name: t.name, errorCode: 36, errorMessage: "exists", topicId: "", numPartitions: -1, replicationFactor: -1 };
          this.createTopic(t.name, t.numPartitions < 0 ? 1 : t.numPartitions);
          return { name: t.name, errorCode: 0, errorMessage: "", topicId: `id-${t.name}`, numPartitions: t.numPartitions, replicationFactor: 1 };
        }),
      }),
      deleteTopics: async (req) => ({ results: req.names.map((name) => ({ name, errorCode: this.topics.delete(name) ? 0 : 3, errorMessage: "" })) }),
      describeTopics: async () => ({ topics: [] }),
      createPartitions: async (req) => ({
        results: req.topics.map((t) => {
          const partitions = this.topics.get(t.name);
          if (!partitions) return { name: t.name, errorCode: 3, errorMessage: "unknown" };
          if (t.count <= partitions.length) return { name: t.name, errorCode: 37, errorMessage: `has ${partitions.length} partitions, got ${t.count}` };
          if (!req.validateOnly) while (partitions.length < t.count) partitions.push([]);
          return { name: t.name, errorCode: 0, errorMessage: "" };
        }),
      }),
      initProducerId: async () => ({ errorCode: 0, errorMessage: "", producerId: this.nextProducerId++, producerEpoch: 0 }),
    };
    // One call by RPC name, with the injected faults and lost answers: the same for a unary
    // call and for a request on the Pipeline stream.
    const invoke = async (name: string, fn: (req: unknown) => Promise<unknown>, req: unknown): Promise<unknown> => {
      this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
      const whole = this.faults.get(name)?.[0];
      if (whole?.wholeCall) {
        this.faults.get(name)?.shift();
        throw new FlotillaError(whole.error, "injected");
      }
      const res = await fn(req);
      const drops = this.dropped.get(name) ?? 0;
      if (drops > 0) {
        this.dropped.set(name, drops - 1);
        throw new FlotillaError("NETWORK_EXCEPTION", "injected: response lost");
      }
      return res;
    };
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, fn] of Object.entries(api) as [string, (req: unknown) => Promise<unknown>][]) {
      impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        invoke(name, fn, call.request).then(
          (res) => cb(null, res),
          (err: unknown) => cb(toServiceError(err) as grpc.ServiceError),
        );
      };
    }
    impl["Pipeline"] = pipelineHandler({
      produce: (req) => invoke("produce", api.produce as (req: unknown) => Promise<unknown>, req) as Promise<ProduceResponse>,
      fetch: (req) => invoke("fetch", api.fetch as (req: unknown) => Promise<unknown>, req) as Promise<FetchResponse>,
    }) as grpc.UntypedHandleCall;
    server.addService(serviceClientCtor(BROKER_PROTO, BROKER_SERVICE).service, impl);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) w();
    this.server?.forceShutdown();
  }

  private takeFault(rpc: string): ErrorName | undefined {
    const list = this.faults.get(rpc);
    const f = list?.[0];
    if (!f || f.wholeCall) return undefined;
    list.shift();
    return f.error;
  }

  private metadata(topics: string[]): MetadataResponse {
    const names = topics.length > 0 ? topics : [...this.topics.keys()];
    return {
      clusterId: "memory",
      controllerId: 1,
      brokers: [{ nodeId: 1, host: "127.0.0.1", port: this.port, rack: "", fenced: false }],
      topics: names.map((name) => {
        const parts = this.topics.get(name);
        if (!parts) return { errorCode: 3, errorMessage: `topic ${name} does not exist`, name, topicId: "", isInternal: false, partitions: [] };
        return {
          errorCode: 0,
          errorMessage: "",
          name,
          topicId: `id-${name}`,
          isInternal: false,
          partitions: parts.map((_, partition) => {
            const leaderId = this.leaderless.has(`${name}/${partition}`) ? -1 : 1;
            return { errorCode: leaderId < 0 ? ErrorCodes.LEADER_NOT_AVAILABLE.code : 0, partition, leaderId, leaderEpoch: 0, replicas: [1], isr: leaderId < 0 ? [] : [1], offlineReplicas: [] };
          }),
        };
      }),
    };
  }

  private produce(req: Parameters<BrokerApi["produce"]>[0]): ProduceResponse {
    const log: { topic: string; partition: number; batches: number }[] = [];
    const res: ProduceResponse = {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const fault = this.takeFault("produce");
          const fail = (code: number, message: string) => ({ partition: p.partition, errorCode: code, errorMessage: message, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: 0 });
          if (fault) return fail(ErrorCodes[fault].code, `injected ${fault}`);
          const stored = this.topics.get(t.name)?.[p.partition];
          if (!stored) return fail(3, "unknown topic or partition");
          const batches = validateBatches(p.records);
          log.push({ topic: t.name, partition: p.partition, batches: batches.length });
          const base = this.logEndOffset(t.name, p.partition);
          const first = batches[0]?.header;
          if (batches.length === 1 && first && first.producerId >= 0) {
            const key = `${t.name}/${p.partition}/${first.producerId}`;
            const st = this.producerStates.get(key);
            const lastSequence = first.baseSequence + first.lastOffsetDelta;
            if (st && first.producerEpoch < st.epoch) return fail(ErrorCodes.INVALID_PRODUCER_EPOCH.code, "old epoch");
            if (st && first.producerEpoch === st.epoch) {
              const dup = st.batches.find((b) => b.baseSequence === first.baseSequence && b.lastSequence === lastSequence);
              if (dup) return { partition: p.partition, errorCode: 0, errorMessage: "", baseOffset: dup.baseOffset, logAppendTimeMs: -1, logStartOffset: 0 };
              if (first.baseSequence !== (st.batches.at(-1) as { lastSequence: number }).lastSequence + 1) return fail(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER.code, "out of order");
            } else if (first.baseSequence !== 0) {
              return fail(ErrorCodes[st ? "OUT_OF_ORDER_SEQUENCE_NUMBER" : "UNKNOWN_PRODUCER_ID"].code, "a new producer or epoch starts at 0");
            }
            const kept = st && st.epoch === first.producerEpoch ? st.batches.slice(-4) : [];
            this.producerStates.set(key, { epoch: first.producerEpoch, batches: [...kept, { baseSequence: first.baseSequence, lastSequence, baseOffset: base }] });
          }
          let next = base;
          for (const b of batches) {
            const bytes = Buffer.from(p.records.subarray(b.pos, b.pos + b.size));
            setBaseOffset(bytes, 0, next);
            stored.push({ baseOffset: next, lastOffset: next + b.header.lastOffsetDelta, bytes });
            next += b.header.lastOffsetDelta + 1;
          }
          return { partition: p.partition, errorCode: 0, errorMessage: "", baseOffset: base, logAppendTimeMs: -1, logStartOffset: 0 };
        }),
      })),
    };
    this.produceLog.push(log);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
    return res;
  }

  private async fetch(req: Parameters<BrokerApi["fetch"]>[0]): Promise<FetchResponse> {
    const build = (): { res: FetchResponse; bytes: number } => {
      let bytes = 0;
      const res: FetchResponse = {
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => {
            const fault = this.takeFault("fetch");
            const stored = this.topics.get(t.name)?.[p.partition];
            const hw = this.logEndOffset(t.name, p.partition);
            if (fault) return { partition: p.partition, errorCode: ErrorCodes[fault].code, errorMessage: fault, highWatermark: -1, logStartOffset: -1, records: Buffer.alloc(0) };
            if (!stored) return { partition: p.partition, errorCode: 3, errorMessage: "unknown", highWatermark: -1, logStartOffset: -1, records: Buffer.alloc(0) };
            if (p.fetchOffset > hw) return { partition: p.partition, errorCode: 1, errorMessage: "out of range", highWatermark: hw, logStartOffset: 0, records: Buffer.alloc(0) };
            const out: Buffer[] = [];
            let size = 0;
            for (const b of stored) {
              if (b.lastOffset < p.fetchOffset) continue;
              if (out.length > 0 && size + b.bytes.length > p.partitionMaxBytes) break;
              out.push(b.bytes);
              size += b.bytes.length;
            }
            bytes += size;
            return { partition: p.partition, errorCode: 0, errorMessage: "", highWatermark: hw, logStartOffset: 0, records: Buffer.concat(out) };
          }),
        })),
      };
      return { res, bytes };
    };
    const deadline = Date.now() + req.maxWaitMs;
    // Long poll: bounded by maxWaitMs; woken by each produce.
    for (;;) {
      const { res, bytes } = build();
      const left = deadline - Date.now();
      if (bytes >= Math.max(1, req.minBytes) || left <= 0 || res.topics.some((t) => t.partitions.some((p) => p.errorCode !== 0))) return res;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
