/**
 * A combined node (process.roles=broker,controller) in one process: the composition root
 * that wires the metadata log, the controller, the partition logs, the broker and the
 * gRPC listener, and takes them down in the reverse order.
 *
 * Start-up:
 *   1. check meta.properties in every log dir (cluster id, node id)
 *   2. open the metadata log and replay it into the controller's image
 *   3. open the partition logs (recovering them), apply the image, delete stray logs
 *   4. listen; register this broker with the controller and unfence it
 * Shutdown (close): answer parked fetches, stop accepting calls and let those in flight
 * finish, stop the controller, close the partition logs (clean-shutdown markers), close
 * the metadata log.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import path from "node:path";
import { type Clock, type Random } from "@flotilla/common";
import { createLogger, type Logger } from "@flotilla/common/logger";
import { systemClock } from "@flotilla/common/node";
import { Controller, LevelMetadataLog } from "@flotilla/controller";
import { EMPTY_IMAGE, diffImages, resolveTopicConfig } from "@flotilla/metadata";
import { LogManager } from "@flotilla/storage";
import { Broker } from "./broker.js";
import { advertisedHost, clientListener, type ServerConfig } from "./config.js";
import { startBrokerGrpcServer, type BrokerGrpcServer } from "./grpc-server.js";
import { ensureMetaProperties } from "./meta-properties.js";
import { ReplicaManager, toLogConfig } from "./replica-manager.js";

/** Directory of the single-node metadata log inside metadata.log.dir. */
export const METADATA_LOG_DIR_NAME = "__cluster_metadata";
/** Longest a fetch may wait, whatever max_wait_ms asks. */
export const FETCH_WAIT_MS_MAX = 30_000;
/** Most fetches parked at once. */
export const PARKED_FETCHES_MAX = 1000;
/** How long close() lets calls in flight finish before cancelling them. */
export const SHUTDOWN_GRACE_MS = 5000;

export interface NodeHandle {
  /** The advertised "host:port" clients should use. */
  readonly address: string;
  /** The port bound (the real one when the listener asked for port 0). */
  readonly port: number;
  readonly nodeId: number;
  readonly clusterId: string;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

export interface StartNodeOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** Randomness for topic ids and placement, from the OS. */
const cryptoRandom: Random = {
  next: () => randomBytes(4).readUInt32BE() / 4294967296,
  int: (lo, hi) => randomInt(lo, hi),
};

export async function startNode(config: ServerConfig, options: StartNodeOptions = {}): Promise<NodeHandle> {
  const logger = options.logger ?? createLogger("flotilla-server");
  const clock = options.clock ?? systemClock;
  for (const { key, source } of config.unknownKeys) logger.warn({ key, source }, "ignoring unknown configuration key");

  const cleanups: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.error({ err }, "error while stopping the node");
      }
    }
  };

  try {
    const dirs = [...new Set([...config.logDirs, config.metadataLogDir])];
    const clusterId = await ensureMetaProperties(dirs, config.nodeId, config.clusterId);

    const metadataLog = await LevelMetadataLog.open(path.join(config.metadataLogDir, METADATA_LOG_DIR_NAME), { logger: logger.child({ component: "metadata-log" }) });
    cleanups.push(() => metadataLog.close());
    const controller = await Controller.start({
      log: metadataLog,
      defaults: { numPartitions: config.numPartitions, replicationFactor: config.defaultReplicationFactor },
      random: cryptoRandom,
      logger: logger.child({ component: "controller" }),
    });
    cleanups.push(() => controller.close());

    const logs = await LogManager.open({
      logDirs: config.logDirs,
      clock,
      logger: logger.child({ component: "log-manager" }),
      configFor: (topic) => toLogConfig(resolveTopicConfig(controller.image().configs.topic.get(topic), config.topicDefaults)),
    });
    const replicas = new ReplicaManager({
      nodeId: config.nodeId,
      logs,
      topicDefaults: config.topicDefaults,
      logger: logger.child({ component: "replica-manager" }),
      parkedFetchesMax: PARKED_FETCHES_MAX,
    });
    cleanups.push(() => replicas.close());
    const initial = controller.image();
    await replicas.applyImage(initial, diffImages(EMPTY_IMAGE, initial));
    await replicas.deleteStrayLogs(initial);
    const unsubscribe = controller.subscribe((image, changes) => void replicas.applyImage(image, changes));
    cleanups.push(async () => unsubscribe());

    const listener = clientListener(config);
    const broker = new Broker({
      nodeId: config.nodeId,
      clusterId,
      controllerId: config.nodeId,
      listenerName: listener.name,
      controller,
      replicas,
      topicDefaults: config.topicDefaults,
      autoCreateTopicsEnable: config.autoCreateTopicsEnable,
      fetchLimits: { fetchMaxBytes: config.fetchMaxBytes, fetchWaitMsMax: FETCH_WAIT_MS_MAX },
      nowMs: () => clock.nowMs(),
      logger: logger.child({ component: "broker" }),
    });
    const server: BrokerGrpcServer = await startBrokerGrpcServer({ api: broker, host: listener.host, port: listener.port, logger: logger.child({ component: "grpc" }) });
    cleanups.push(async () => {
      replicas.beginShutdown();
      await server.close(SHUTDOWN_GRACE_MS);
    });

    const advertised = config.advertisedListeners.find((l) => l.name === listener.name) ?? listener;
    const endpoint = { name: listener.name, host: advertisedHost(advertised.host), port: advertised.port === 0 ? server.port : advertised.port };
    const { brokerEpoch } = await controller.registerBroker({ brokerId: config.nodeId, incarnationId: randomUUID(), endpoints: [endpoint], rack: config.brokerRack });
    await replicas.waitForOffset(controller.image().offset);
    await controller.brokerHeartbeat({ brokerId: config.nodeId, brokerEpoch, currentMetadataOffset: replicas.appliedOffset, wantFence: false });
    logs.startRetention(config.logRetentionCheckIntervalMs);

    const address = `${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
    logger.info(
      { nodeId: config.nodeId, clusterId, listener: `${listener.name}://${listener.host}:${server.port}`, advertised: address, logDirs: config.logDirs, metadataLogDir: config.metadataLogDir, brokerEpoch },
      "flotilla node started (broker,controller)",
    );

    let closing: Promise<void> | undefined;
    return {
      address,
      port: server.port,
      nodeId: config.nodeId,
      clusterId,
      close() {
        closing ??= (async () => {
          logger.info({ nodeId: config.nodeId }, "flotilla node stopping");
          await unwind();
          logger.info({ nodeId: config.nodeId }, "flotilla node stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
