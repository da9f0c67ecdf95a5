/**
 * The broker's Kafka listener: the set of open Kafka connections over one handler table,
 * and the first-bytes test that tells a Kafka connection from a gRPC one on a shared port.
 *
 * The listener does not own a server socket: the same-port router in ../grpc-server.ts
 * accepts every connection, reads its first bytes with `sniffProtocol`, and hands Kafka
 * connections to `KafkaListener.accept` (tests may accept from their own net.Server).
 */
import net from "node:net";
import type { Socket } from "node:net";
import type { Logger } from "@flotilla/common/logger";
import type { KafkaBackends, KafkaHandlerFactory } from "./handler.js";
import { KafkaConnection, DEFAULT_KAFKA_CONNECTION_LIMITS, type KafkaConnectionLimits } from "./connection.js";
import { buildKafkaRegistry, type KafkaHandlerRegistry } from "./registry.js";

export interface KafkaListenerOptions {
  readonly registry: KafkaHandlerRegistry;
  readonly logger: Logger;
  readonly limits?: Partial<KafkaConnectionLimits>;
  /** Open Kafka connections at most; one more is closed at once (Kafka's max.connections, which is unbounded by default). */
  readonly connectionsMax?: number;
}

/** Settings of the Kafka listener a broker runs beside gRPC: the backends plus optional limits. */
export type KafkaListenerSettings = KafkaBackends & {
  readonly limits?: Partial<KafkaConnectionLimits>;
  readonly connectionsMax?: number;
  /** Handler factories to serve instead of the broker's (tests). */
  readonly factories?: readonly KafkaHandlerFactory[];
};

export const KAFKA_CONNECTIONS_MAX_DEFAULT = 10_000;

export class KafkaListener {
  private readonly connections = new Set<KafkaConnection>();
  private closedFlag = false;

  constructor(private readonly options: KafkaListenerOptions) {}

  /** A listener serving the broker's handlers (data path and groups) over `settings`' backends. */
  static forBroker(settings: KafkaListenerSettings): KafkaListener {
    return new KafkaListener({
      registry: buildKafkaRegistry(settings, settings.factories),
      logger: settings.logger,
      limits: settings.limits,
      connectionsMax: settings.connectionsMax,
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get limits(): KafkaConnectionLimits {
    return { ...DEFAULT_KAFKA_CONNECTION_LIMITS, ...this.options.limits };
  }

  /** Serves `socket` as a Kafka connection; `initialBytes` were already read from it. */
  accept(socket: Socket, initialBytes?: Buffer): void {
    const max = this.options.connectionsMax ?? KAFKA_CONNECTIONS_MAX_DEFAULT;
    if (this.closedFlag || this.connections.size >= max) {
      if (!this.closedFlag) this.options.logger.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, connectionsMax: max }, "too many Kafka connections; closing the new one");
      socket.destroy();
      return;
    }
    const connection: KafkaConnection = new KafkaConnection(socket, {
      registry: this.options.registry,
      logger: this.options.logger,
      limits: this.options.limits,
      initialBytes,
      onClose: () => this.connections.delete(connection),
    });
    this.connections.add(connection);
    connection.start();
  }

  /** Closes every connection (aborting handlers in flight) and refuses new ones. */
  close(): void {
    this.closedFlag = true;
    for (const c of [...this.connections]) c.close();
    this.connections.clear();
  }
}

/** HTTP/2's client connection preface (RFC 9113 §3.4), which every gRPC connection starts with. */
export const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/**
 * Bytes of the preface that decide: "PRI * HTTP/2.0". A Kafka frame cannot start with
 * them: its size prefix would be 0x50524920, about 1.3 GB, far above any request limit.
 */
export const HTTP2_PREFACE_DECISIVE_BYTES = 14;

export type SniffResult = { readonly protocol: "grpc" | "kafka"; readonly bytes: Buffer } | { readonly protocol: "none"; readonly reason: "timeout" | "closed" };

/**
 * Reads a new connection's first bytes until they tell its protocol: the start of the
 * HTTP/2 preface means gRPC, anything else Kafka. Bytes may come in pieces; gives up after
 * `timeoutMs` (the socket is then left to the caller to close). The bytes read are
 * returned so the caller can hand them on; the socket is left paused with no data listener.
 */
export function sniffProtocol(socket: Socket, timeoutMs: number): Promise<SniffResult> {
  return new Promise<SniffResult>((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (result: SniffResult): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("end", onClose);
      socket.off("error", onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      const compared = Math.min(bytes.length, HTTP2_PREFACE_DECISIVE_BYTES);
      if (!bytes.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared))) finish({ protocol: "kafka", bytes });
      else if (compared === HTTP2_PREFACE_DECISIVE_BYTES) finish({ protocol: "grpc", bytes });
    };
    const onClose = (): void => finish({ protocol: "none", reason: "closed" });
    const timer = setTimeout(() => finish({ protocol: "none", reason: "timeout" }), timeoutMs);
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("end", onClose);
    socket.on("error", onClose);
  });
}

/**
 * A Kafka-only server on host:port (tests and tools; a broker shares its port with gRPC
 * through ../grpc-server.ts instead).
 */
export async function listenKafkaOnly(listener: KafkaListener, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => listener.accept(socket));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close();
        server.close(() => resolve());
      }),
  };
}
