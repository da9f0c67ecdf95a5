/**
 * The composition root of one `flotilla server` process: wires the metadata log, the
 * controller, the partition logs, the broker and the listeners per process.roles, and
 * takes them down in the reverse order.
 *
 * Modes:
 * - single node (controller.quorum.voters empty, roles broker,controller): the metadata
 *   log is LevelDB on this node (LevelMetadataLog), as a one-voter quorum would be, with
 *   no controller listener; the local `flotilla server` default.
 * - quorum voter (controller role, voters listed): the metadata log is the Raft quorum
 *   (RaftMetadataLog); the controller listener serves the Raft transport and the
 *   controller service; the Controller runs commands when this voter is the Raft leader
 *   and forwards them to the leader otherwise.
 * - broker only: the metadata log is followed over FetchMetadata (FetchedMetadataLog) and
 *   every command is forwarded to the active controller.
 *
 * Start-up of a broker:
 *   1. check meta.properties in every log dir (cluster id, node id)
 *   2. open the metadata log and load the controller's image
 *   3. open the partition logs (recovering them)
 *   4. listen; register this broker (a fresh incarnation id), wait until the local image
 *      has the registration (caught up with the controller), only then apply the image to
 *      the partitions and the group coordinator and delete stray logs; heartbeat to be
 *      unfenced, then heartbeat every broker.heartbeat.interval.ms
 * Shutdown (close): controlled shutdown first when in a quorum (heartbeats with
 * wantShutDown until the controller has moved every leadership away, bounded by
 * CONTROLLED_SHUTDOWN_TIMEOUT_MS), then answer parked fetches, stop accepting calls and
 * let those in flight finish, stop the controller, close the partition logs
 * (clean-shutdown markers), close the metadata log (a Raft leader hands leadership on).
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import path from "node:path";
import { FlotillaError, type Clock, type Random } from "@flotilla/common";
import { createLogger, type Logger } from "@flotilla/common/logger";
import { systemClock } from "@flotilla/common/node";
import {
  Controller,
  ControllerQuorumClient,
  LevelMetadataLog,
  RaftMetadataLog,
  addControllerService,
  addRaftTransportService,
  bindGrpcServer,
  createGrpcServer,
  shutdownGrpcServer,
  type MetadataLog,
} from "@flotilla/controller";
import { EMPTY_IMAGE, diffImages, resolveTopicConfig, type MetadataImage } from "@flotilla/metadata";
import type { CreateTopicsRequest } from "@flotilla/protocol";
import { LogManager } from "@flotilla/storage";
import { Broker } from "./broker.js";
import { advertisedHost, clientListener, controllerListener, type ServerConfig } from "./config.js";
import { bindAddress, startBrokerGrpcServer, type BrokerGrpcServer } from "./grpc-server.js";
import { kafkaBrokerConfigs } from "./kafka/index.js";
import { FetchedMetadataLog } from "./metadata-fetcher.js";
import { NodeStatus, createNodeMetrics, startHttpAdmin, type Readiness } from "./http-admin.js";
import { startGroupCoordinator } from "./group/start.js";
import { ensureMetaProperties } from "./meta-properties.js";
import { ReplicaManager, toLogConfig } from "./replica-manager.js";

/** Directory of the single-node metadata log inside metadata.log.dir. */
export const METADATA_LOG_DIR_NAME = "__cluster_metadata";
/** Directory of the Raft metadata log (log, hard state, snapshots) inside metadata.log.dir. */
export const RAFT_METADATA_DIR_NAME = "__cluster_metadata_raft";
/** Longest a fetch may wait, whatever max_wait_ms asks. */
export const FETCH_WAIT_MS_MAX = 30_000;
/** Most fetches parked at once. */
export const PARKED_FETCHES_MAX = 1000;
/** How long close() lets calls in flight finish before cancelling them. */
export const SHUTDOWN_GRACE_MS = 5000;
/** Longest a controlled shutdown waits for the controller to move this broker's leaderships. */
export const CONTROLLED_SHUTDOWN_TIMEOUT_MS = 5000;
/** Longest start-up waits for an active controller to register this broker. */
export const REGISTRATION_TIMEOUT_MS = 60_000;
/** Floor of one broker heartbeat attempt's deadline (otherwise a third of broker.session.timeout.ms). */
export const HEARTBEAT_CALL_TIMEOUT_MIN_MS = 250;
/** Raft tick length of the metadata quorum. */
const RAFT_TICK_MS = 50;

export interface NodeHandle {
  /** The advertised "host:port" clients should use ("" for a controller-only node). */
  readonly address: string;
  /** The client port bound (the real one when the listener asked for port 0); 0 without the broker role. */
  readonly port: number;
  /** The controller listener's bound port; 0 without one. */
  readonly controllerPort: number;
  readonly nodeId: number;
  readonly clusterId: string;
  /** The HTTP admin listener's bound port (http.listener); 0 when off. */
  readonly httpPort: number;
  /** What GET /readyz answers: "caught up and serving" (see ./http-admin.ts). */
  readiness(): Readiness;
  /** Graceful shutdown (controlled shutdown first, in a quorum); idempotent. */
  close(): Promise<void>;
}

export interface StartNodeOptions {
  readonly logger?: Logger;
  /** Time of the partition logs (retention, timestamps). Broker sessions always use the system clock. */
  readonly clock?: Clock;
}

/** Randomness for topic ids and placement, from the OS. */
const cryptoRandom: Random = {
  next: () => randomBytes(4).readUInt32BE() / 4294967296,
  int: (lo, hi) => randomInt(lo, hi),
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or "timeout" after `ms` (the promise goes on; its outcome is dropped). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, ms))));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startNode(config: ServerConfig, options: StartNodeOptions = {}): Promise<NodeHandle> {
  const logger = options.logger ?? createLogger("flotilla-server");
  const clock = options.clock ?? systemClock;
  for (const { key, source } of config.unknownKeys) logger.warn({ key, source }, "ignoring unknown configuration key");
  const isBroker = config.processRoles.includes("broker");
  const isController = config.processRoles.includes("controller");
  const quorum = config.controllerQuorumVoters.length > 0;

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
    const dirs = isBroker ? [...new Set([...config.logDirs, config.metadataLogDir])] : [config.metadataLogDir];
    const clusterId = await ensureMetaProperties(dirs, config.nodeId, config.clusterId);

    // Probes and metrics first, so /healthz answers (and /readyz says why not) during a long start-up.
    const status = new NodeStatus(config.nodeId, config.processRoles);
    const metrics = createNodeMetrics(status);
    let httpPort = 0;
    if (config.httpListener) {
      const admin = await startHttpAdmin({ host: config.httpListener.host, port: config.httpListener.port, status, registry: metrics.registry, logger: logger.child({ component: "http-admin" }) });
      httpPort = admin.port;
      cleanups.push(() => admin.close());
    }
    const serving = () => {
      status.phase = "serving";
      // Runs first at close (cleanups run in reverse): readiness drops before anything stops.
      cleanups.push(async () => {
        status.phase = "stopping";
      });
    };

    // --- the metadata log and the controller ---
    const voterAddresses = new Map(config.controllerQuorumVoters.map((v) => [v.id, bindAddress(v.host, v.port)]));
    const quorumClient = quorum
      ? new ControllerQuorumClient({
          addresses: [...voterAddresses.values()],
          logger: logger.child({ component: "controller-client" }),
          // One heartbeat attempt stuck on a cut-off former controller must not outlast this
          // broker's session at the controller that took over.
          heartbeatCallTimeoutMs: Math.max(HEARTBEAT_CALL_TIMEOUT_MIN_MS, Math.floor(config.brokerSessionTimeoutMs / 3)),
        })
      : undefined;
    if (quorumClient) cleanups.push(async () => quorumClient.close());
    let metadataLog: MetadataLog;
    let raftLog: RaftMetadataLog | undefined;
    let fetchedLog: FetchedMetadataLog | undefined;
    if (!quorum) {
      metadataLog = await LevelMetadataLog.open(path.join(config.metadataLogDir, METADATA_LOG_DIR_NAME), { logger: logger.child({ component: "metadata-log" }) });
    } else if (isController) {
      raftLog = await RaftMetadataLog.open({
        nodeId: config.nodeId,
        voters: voterAddresses,
        dir: path.join(config.metadataLogDir, RAFT_METADATA_DIR_NAME),
        logger: logger.child({ component: "metadata-log" }),
        tickMs: RAFT_TICK_MS,
        electionTicks: Math.max(2, Math.round(config.controllerQuorumElectionTimeoutMs / RAFT_TICK_MS)),
      });
      metadataLog = raftLog;
      // Commands this voter forwards (its broker's heartbeats among them) follow the quorum's
      // leader as soon as this voter's Raft node learns of it, not after a timeout.
      if (quorumClient) {
        const client = quorumClient;
        const stop = raftLog.onLeaderChange((_leaderId, address) => {
          if (address) client.noteLeader(address);
        });
        cleanups.push(async () => stop());
      }
    } else {
      fetchedLog = new FetchedMetadataLog(quorumClient!, logger.child({ component: "metadata-fetcher" }));
      metadataLog = fetchedLog;
    }
    const log = metadataLog;
    /**
     * The active controller for Metadata answers: the metadata quorum's Raft leader as this
     * node knows it (its own Raft node on a voter; the last controller that answered or was
     * hinted on a broker-only node), -1 when unknown (as Kafka answers).
     */
    const activeControllerId = (): number => {
      if (!quorum) return config.nodeId;
      if (raftLog) return raftLog.leaderId();
      const address = quorumClient?.activeControllerAddress;
      for (const [id, a] of voterAddresses) if (a === address) return id;
      return -1;
    };
    let controllerServer: ReturnType<typeof createGrpcServer> | undefined;
    cleanups.push(async () => {
      // Raft first (a leader hands leadership on, which needs the listener), then the listener.
      await (raftLog ? raftLog.close({ leadership: "transfer" }) : log.close());
      if (controllerServer) await shutdownGrpcServer(controllerServer, 1000);
    });
    const controller = await Controller.start({
      log: metadataLog,
      defaults: { numPartitions: config.numPartitions, replicationFactor: config.defaultReplicationFactor },
      random: cryptoRandom,
      logger: logger.child({ component: "controller" }),
      clock: systemClock,
      brokerSessionTimeoutMs: config.brokerSessionTimeoutMs,
      uncleanLeaderElectionEnable: config.uncleanLeaderElectionEnable,
      ...(config.autoLeaderRebalanceEnable ? { leaderRebalanceIntervalMs: config.leaderImbalanceCheckIntervalMs } : {}),
      ...(quorumClient ? { forwardTo: quorumClient } : {}),
    });
    cleanups.push(() => controller.close());
    status.controller = controller;
    status.metadataLog = metadataLog;
    status.quorum = raftLog;

    let controllerPort = 0;
    if (raftLog) {
      const listener = controllerListener(config);
      if (!listener) throw new FlotillaError("INVALID_CONFIG", "listeners has no controller listener");
      const server = createGrpcServer();
      controllerServer = server;
      const rl = raftLog;
      addRaftTransportService(server, { selfId: config.nodeId, onMessage: (m) => rl.driver.receive(m), logger: logger.child({ component: "raft-transport" }) });
      addControllerService(server, { controller, log: rl, logger: logger.child({ component: "controller-service" }) });
      controllerPort = await bindGrpcServer(server, bindAddress(listener.host, listener.port));
      logger.info({ listener: `${listener.name}://${listener.host}:${controllerPort}`, voters: Object.fromEntries(voterAddresses) }, "controller listener up");
    }
    if (fetchedLog) {
      await fetchedLog.start();
      logger.info({ offset: fetchedLog.committedOffset() }, "following the metadata log");
    }

    if (!isBroker) {
      logger.info({ nodeId: config.nodeId, clusterId, roles: config.processRoles }, "flotilla node started (controller)");
      serving();
      return handle({ address: "", port: 0, controllerPort, nodeId: config.nodeId, clusterId, httpPort, status, logger, close: unwind });
    }

    // --- the broker ---
    let brokerEpoch = -1;
    const logs = await LogManager.open({
      logDirs: config.logDirs,
      clock,
      logger: logger.child({ component: "log-manager" }),
      configFor: (topic) => toLogConfig(resolveTopicConfig(controller.image().configs.topic.get(topic), config.topicDefaults)),
    });
    const listener = clientListener(config);
    const replicas = new ReplicaManager({
      nodeId: config.nodeId,
      logs,
      topicDefaults: config.topicDefaults,
      logger: logger.child({ component: "replica-manager" }),
      parkedFetchesMax: PARKED_FETCHES_MAX,
      controllerChannel: controller,
      brokerEpoch: () => brokerEpoch,
      replicaLagTimeMaxMs: config.replicaLagTimeMaxMs,
      listenerName: listener.name,
    });
    cleanups.push(() => replicas.close());
    status.broker = { replicas, brokerEpoch: () => brokerEpoch };
    /**
     * Metadata publishing (Kafka's initial catch-up before the broker's metadata publishers
     * start): the partitions and the group coordinator see no image until the local one has
     * caught up with the controller's committed log as of this broker's registration (its
     * own RegisterBroker record, at offset brokerEpoch). A restarted node's stored image
     * is stale; acting on it would make it leader or follower in epochs long gone.
     */
    let published: MetadataImage = EMPTY_IMAGE;
    const publishListeners = new Set<(image: MetadataImage) => void>();
    const publishedMetadata = {
      image: () => published,
      subscribe: (listener: (image: MetadataImage) => void): (() => void) => {
        publishListeners.add(listener);
        return () => publishListeners.delete(listener);
      },
      createTopics: (request: CreateTopicsRequest) => controller.createTopics(request),
    };
    const publish = (image: MetadataImage): void => {
      published = image;
      for (const listener of [...publishListeners]) listener(image);
    };
    const startPublishing = async (): Promise<void> => {
      // Read the image and subscribe in one turn, so no committed batch falls between them;
      // later images apply only after the first one and the stray-log sweep it decides.
      const caughtUp = controller.image();
      const first = replicas.applyImage(caughtUp, diffImages(EMPTY_IMAGE, caughtUp)).then(() => replicas.deleteStrayLogs(caughtUp));
      let chain: Promise<void> = first.catch(() => undefined);
      const unsubscribe = controller.subscribe((image, changes) => {
        chain = chain.then(() => replicas.applyImage(image, changes));
        publish(image);
      });
      cleanups.push(async () => unsubscribe());
      publish(caughtUp);
      await first;
      logger.info({ offset: caughtUp.offset, brokerEpoch }, "metadata caught up; publishing it to the partitions and the group coordinator");
    };

    const broker = new Broker({
      nodeId: config.nodeId,
      clusterId,
      controllerId: activeControllerId,
      listenerName: listener.name,
      controller,
      replicas,
      topicDefaults: config.topicDefaults,
      autoCreateTopicsEnable: config.autoCreateTopicsEnable,
      fetchLimits: { fetchMaxBytes: config.fetchMaxBytes, fetchWaitMsMax: FETCH_WAIT_MS_MAX },
      nowMs: () => clock.nowMs(),
      logger: logger.child({ component: "broker" }),
    });
    const groups = startGroupCoordinator({ nodeId: config.nodeId, listenerName: listener.name, config: config.groups, metadata: publishedMetadata, replicas, clock, logger });
    cleanups.push(() => groups.close());
    const instrumented = metrics.instrument(broker);
    const server: BrokerGrpcServer = await startBrokerGrpcServer({
      api: instrumented,
      groups,
      host: listener.host,
      port: listener.port,
      logger: logger.child({ component: "grpc" }),
      // The Kafka protocol on the same port, routed by each connection's first bytes.
      kafka: { broker: instrumented, groups, brokerConfigs: () => kafkaBrokerConfigs(config), nodeId: config.nodeId, logger: logger.child({ component: "kafka" }), limits: { requestMaxBytes: config.socketRequestMaxBytes, connectionsMaxIdleMs: config.connectionsMaxIdleMs } },
    });
    cleanups.push(async () => {
      replicas.beginShutdown();
      await server.close(SHUTDOWN_GRACE_MS);
    });
    // Runs before the server drains: parked JoinGroup/SyncGroup calls answer NOT_COORDINATOR at once.
    cleanups.push(() => groups.close());

    const advertised = config.advertisedListeners.find((l) => l.name === listener.name) ?? listener;
    const endpoint = { name: listener.name, host: advertisedHost(advertised.host), port: advertised.port === 0 ? server.port : advertised.port };
    const incarnationId = randomUUID();
    const register = async (): Promise<void> => {
      const deadline = Date.now() + REGISTRATION_TIMEOUT_MS;
      for (;;) {
        try {
          brokerEpoch = (await controller.registerBroker({ brokerId: config.nodeId, incarnationId, endpoints: [endpoint], rack: config.brokerRack })).brokerEpoch;
          return;
        } catch (err) {
          if (!FlotillaError.is(err) || !err.retriable || Date.now() > deadline) throw err;
          logger.info({ err: err.message }, "no active controller yet; retrying the registration");
          await sleep(200);
        }
      }
    };
    await register();
    await controller.waitForImageOffset(brokerEpoch, REGISTRATION_TIMEOUT_MS);
    await startPublishing();
    await replicas.waitForOffset(brokerEpoch);
    await controller.brokerHeartbeat({ brokerId: config.nodeId, brokerEpoch, currentMetadataOffset: replicas.appliedOffset, wantFence: false, wantShutDown: false });

    // Heartbeats: keep the session alive; a refused epoch (the registration was replaced) re-registers.
    let shuttingDown = false;
    let heartbeatTimer: NodeJS.Timeout | undefined;
    let heartbeating: Promise<void> = Promise.resolve();
    const heartbeat = async (): Promise<void> => {
      try {
        await controller.brokerHeartbeat({ brokerId: config.nodeId, brokerEpoch, currentMetadataOffset: replicas.appliedOffset, wantFence: false, wantShutDown: false });
      } catch (err) {
        if (FlotillaError.is(err, "BROKER_NOT_AVAILABLE") && !shuttingDown) {
          logger.warn({ err: err.message }, "controller refused the heartbeat; registering again");
          await register().catch((e: unknown) => logger.warn({ err: (e as Error).message }, "re-registration failed"));
        } else {
          logger.warn({ err: (err as Error).message }, "broker heartbeat failed");
        }
      }
    };
    const scheduleHeartbeat = () => {
      heartbeatTimer = setTimeout(() => {
        heartbeating = heartbeat().finally(() => {
          if (!shuttingDown) scheduleHeartbeat();
        });
      }, config.brokerHeartbeatIntervalMs);
    };
    scheduleHeartbeat();
    const stopHeartbeats = async (): Promise<void> => {
      shuttingDown = true;
      if (heartbeatTimer) clearTimeout(heartbeatTimer);
      // A heartbeat in flight may wait for a quorum that is gone: do not wait long for it.
      await within(heartbeating, 1000);
    };
    cleanups.push(stopHeartbeats);
    /**
     * Heartbeats with wantShutDown until the controller answers shouldShutDown, all within
     * CONTROLLED_SHUTDOWN_TIMEOUT_MS: when the whole cluster stops, the last nodes have no
     * quorum left to ask, and they stop anyway (their partitions then wait for them).
     */
    const controlledShutdown = async (): Promise<void> => {
      const deadline = Date.now() + CONTROLLED_SHUTDOWN_TIMEOUT_MS;
      logger.info({ nodeId: config.nodeId }, "controlled shutdown: asking the controller to move this broker's leaderships");
      while (Date.now() < deadline) {
        try {
          const reply = await within(
            controller.brokerHeartbeat({ brokerId: config.nodeId, brokerEpoch, currentMetadataOffset: replicas.appliedOffset, wantFence: false, wantShutDown: true }),
            deadline - Date.now(),
          );
          if (reply !== "timeout" && reply.shouldShutDown) {
            logger.info({ nodeId: config.nodeId }, "controlled shutdown done: this broker leads nothing");
            return;
          }
        } catch (err) {
          logger.warn({ err: (err as Error).message }, "controlled shutdown heartbeat failed");
        }
        await sleep(Math.min(200, config.brokerHeartbeatIntervalMs, Math.max(0, deadline - Date.now())));
      }
      logger.warn({ timeoutMs: CONTROLLED_SHUTDOWN_TIMEOUT_MS }, "controlled shutdown did not finish in time (no active controller?); stopping anyway");
    };
    if (quorum) {
      // Runs first at close (cleanups run in reverse): move leaderships away while everything still works.
      cleanups.push(async () => {
        await stopHeartbeats();
        await controlledShutdown();
      });
    }
    logs.startRetention(config.logRetentionCheckIntervalMs);

    const address = `${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
    logger.info(
      { nodeId: config.nodeId, clusterId, roles: config.processRoles, listener: `${listener.name}://${listener.host}:${server.port}`, advertised: address, logDirs: config.logDirs, metadataLogDir: config.metadataLogDir, brokerEpoch },
      `flotilla node started (${config.processRoles.join(",")})`,
    );
    serving();
    return handle({ address, port: server.port, controllerPort, nodeId: config.nodeId, clusterId, httpPort, status, logger, close: unwind });
  } catch (err) {
    await unwind();
    throw err;
  }
}

function handle(h: { address: string; port: number; controllerPort: number; nodeId: number; clusterId: string; httpPort: number; status: NodeStatus; logger: Logger; close: () => Promise<void> }): NodeHandle {
  let closing: Promise<void> | undefined;
  return {
    address: h.address,
    port: h.port,
    controllerPort: h.controllerPort,
    nodeId: h.nodeId,
    clusterId: h.clusterId,
    httpPort: h.httpPort,
    readiness: () => h.status.readiness(),
    close() {
      closing ??= (async () => {
        h.logger.info({ nodeId: h.nodeId }, "flotilla node stopping");
        await h.close();
        h.logger.info({ nodeId: h.nodeId }, "flotilla node stopped");
      })();
      return closing;
    },
  };
}
