import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FlotillaError } from "@flotilla/common";
import { loadServerConfig, parseListener } from "./config.js";
import { toLogConfig } from "./replica-manager.js";
import { envNameOfProperty, propertyNameOfEnv } from "./config-sources.js";

let dir: string;
const base = { "node.id": "1" };

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "flotilla-config-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function invalid(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (err) {
    if (FlotillaError.is(err, "INVALID_CONFIG")) return err;
    throw err;
  }
  throw new Error("expected INVALID_CONFIG");
}

describe("server config sources", () => {
  it("maps FLOTILLA_ variables to property names and back", () => {
    expect(propertyNameOfEnv("FLOTILLA_LOG_DIRS")).toBe("log.dirs");
    expect(propertyNameOfEnv("FLOTILLA_NODE_ID")).toBe("node.id");
    expect(propertyNameOfEnv("FLOTILLA_LOG_LEVEL")).toBeUndefined();
    expect(propertyNameOfEnv("HOME")).toBeUndefined();
    expect(envNameOfProperty("log.retention.ms")).toBe("FLOTILLA_LOG_RETENTION_MS");
  });

  it("reads a properties file; the environment wins over it and overrides win over both", async () => {
    const file = path.join(dir, "server.properties");
    await writeFile(file, ["# a comment", "node.id=3", "num.partitions = 4", "log.dirs: /data/a,/data/b", "default.replication.factor 1", "log.retention.hours=\\", "  24"].join("\n"));
    const fromFile = loadServerConfig({ file, env: {} });
    expect(fromFile.nodeId).toBe(3);
    expect(fromFile.numPartitions).toBe(4);
    expect(fromFile.logDirs).toEqual(["/data/a", "/data/b"]);
    expect(fromFile.metadataLogDir).toBe("/data/a");
    expect(fromFile.topicDefaults.retentionMs).toBe(24 * 3_600_000);

    const withEnv = loadServerConfig({ file, env: { FLOTILLA_NUM_PARTITIONS: "6", FLOTILLA_NODE_ID: "5" } });
    expect(withEnv.numPartitions).toBe(6);
    expect(withEnv.nodeId).toBe(5);

    const withOverride = loadServerConfig({ file, env: { FLOTILLA_NUM_PARTITIONS: "6" }, overrides: { "num.partitions": "8" } });
    expect(withOverride.numPartitions).toBe(8);
  });

  it("names a missing config file", () => {
    expect(invalid(() => loadServerConfig({ file: path.join(dir, "nope.properties"), env: {} })).message).toMatch(/cannot read the config file .*nope.properties/);
  });
});

describe("server config values", () => {
  it("has Kafka's defaults", () => {
    const c = loadServerConfig({ env: {}, overrides: base });
    expect(c.processRoles).toEqual(["broker", "controller"]);
    expect(c.listeners).toEqual([{ name: "PLAINTEXT", host: "", port: 9092 }]);
    expect(c.numPartitions).toBe(1);
    expect(c.defaultReplicationFactor).toBe(1);
    expect(c.autoCreateTopicsEnable).toBe(true);
    expect(c.logRetentionCheckIntervalMs).toBe(300_000);
    expect(c.topicDefaults).toMatchObject({ retentionMs: 168 * 3_600_000, retentionBytes: -1, segmentBytes: 1073741824, segmentMs: 168 * 3_600_000, maxMessageBytes: 1048588, minInsyncReplicas: 1, messageTimestampType: "CreateTime" });
    expect(c.logDirs).toEqual(["/tmp/flotilla-logs"]);
  });

  it("takes log.retention.ms over minutes over hours, and -1 as unlimited", () => {
    const env = {};
    expect(loadServerConfig({ env, overrides: { ...base, "log.retention.hours": "1", "log.retention.minutes": "2" } }).topicDefaults.retentionMs).toBe(120_000);
    expect(loadServerConfig({ env, overrides: { ...base, "log.retention.minutes": "2", "log.retention.ms": "500" } }).topicDefaults.retentionMs).toBe(500);
    expect(loadServerConfig({ env, overrides: { ...base, "log.retention.ms": "-1" } }).topicDefaults.retentionMs).toBe(-1);
    expect(loadServerConfig({ env, overrides: { ...base, "log.roll.hours": "2" } }).topicDefaults.segmentMs).toBe(7_200_000);
    expect(loadServerConfig({ env, overrides: { ...base, "log.roll.hours": "2", "log.roll.ms": "100" } }).topicDefaults.segmentMs).toBe(100);
  });

  it("parses listeners with and without a scheme, and advertised listeners", () => {
    expect(parseListener("PLAINTEXT://127.0.0.1:9092", "listeners")).toEqual({ name: "PLAINTEXT", host: "127.0.0.1", port: 9092 });
    expect(parseListener("localhost:0", "listeners")).toEqual({ name: "PLAINTEXT", host: "localhost", port: 0 });
    expect(parseListener("EXTERNAL://[::1]:9000", "listeners")).toEqual({ name: "EXTERNAL", host: "::1", port: 9000 });
    const c = loadServerConfig({ env: {}, overrides: { ...base, listeners: "PLAINTEXT://0.0.0.0:9092,CONTROLLER://:9093", "advertised.listeners": "PLAINTEXT://broker1:9092" } });
    expect(c.listeners).toHaveLength(2);
    expect(c.advertisedListeners).toEqual([{ name: "PLAINTEXT", host: "broker1", port: 9092 }]);
  });

  it("collects unknown keys with their source instead of failing", () => {
    const c = loadServerConfig({ env: { FLOTILLA_NUM_IO_THREADS: "8" }, overrides: { ...base, "log.retention.hourz": "1" } });
    expect(c.unknownKeys).toEqual([
      { key: "num.io.threads", source: "environment FLOTILLA_NUM_IO_THREADS" },
      { key: "log.retention.hourz", source: "override" },
    ]);
  });

  it.each([
    [{}, /node.id is required .*FLOTILLA_NODE_ID/],
    [{ "node.id": "x" }, /node.id=x \(from override\): "x" is not an integer/],
    [{ ...base, "num.partitions": "0" }, /num.partitions=0 .*below the minimum 1/],
    [{ ...base, "log.segment.bytes": "3000000000" }, /log.segment.bytes=3000000000 .*above the maximum 2147483647/],
    [{ ...base, "log.roll.ms": "0" }, /log.roll.ms=0 .*below the minimum 1/],
    [{ ...base, "log.retention.ms": "0" }, /log.retention.ms=0 .*-1 \(unlimited\) or at least 1/],
    [{ ...base, "process.roles": "broker" }, /controller.quorum.voters: is empty.*process.roles=broker needs the voters listed/],
    [{ ...base, "process.roles": "controller" }, /process.roles=controller needs the voters listed/],
    [{ ...base, "process.roles": "broker", "controller.quorum.voters": "1@a:9093,2@b:9093" }, /node.id 1 is a voter but process.roles=broker has no controller role/],
    [{ ...base, "controller.quorum.voters": "1@a:9093,2@b:9093,3@c:9093" }, /listeners: has no controller listener .*controller.listener.names=CONTROLLER/],
    [{ ...base, "controller.quorum.voters": "1@a:9093,2@b:9093", listeners: "PLAINTEXT://:9092,CONTROLLER://:9999" }, /controller listener CONTROLLER is on port 9999, but controller.quorum.voters puts node 1 on port 9093/],
    [{ ...base, "process.roles": "controller", "controller.quorum.voters": "1@a:9093", listeners: "CONTROLLER://:9094" }, /on port 9094/],
    [{ ...base, "process.roles": "broker,zookeeper" }, /"zookeeper" is not broker or controller/],
    [{ ...base, "controller.quorum.voters": "2@a:9093" }, /node.id 1 .*not among the voters/],
    [{ ...base, "controller.quorum.voters": "1@a" }, /"1@a" is not id@host:port/],
    [{ ...base, listeners: "PLAINTEXT://h:99999" }, /port 99999/],
    [{ ...base, listeners: "h" }, /"h" is not NAME:\/\/host:port or host:port/],
    [{ ...base, listeners: "A://:1,B://:2" }, /one listener/],
    [{ ...base, "advertised.listeners": "OTHER://x:1" }, /advertises listener OTHER/],
    [{ ...base, "auto.create.topics.enable": "yes" }, /must be true or false/],
    [{ ...base, "log.message.timestamp.type": "Now" }, /must be one of CreateTime, LogAppendTime/],
    [{ ...base, "log.cleanup.policy": "shred" }, /log.cleanup.policy=shred.*is not one of delete, compact, compact,delete/],
    [{ ...base, "broker.heartbeat.interval.ms": "10000" }, /must be below broker.session.timeout.ms \(9000\)/],
    [{ ...base, "cluster.id": "has space" }, /cluster.id=has space/],
  ])("refuses %j naming the key", (overrides, pattern) => {
    expect(invalid(() => loadServerConfig({ env: {}, overrides })).message).toMatch(pattern);
  });

  it("takes log.cleanup.policy compact or compact,delete as the broker default", () => {
    expect(loadServerConfig({ env: {}, overrides: { ...base, "log.cleanup.policy": "compact" } }).topicDefaults.cleanupPolicy).toBe("compact");
    expect(loadServerConfig({ env: {}, overrides: { ...base, "log.cleanup.policy": "delete,compact" } }).topicDefaults.cleanupPolicy).toBe("compact,delete");
    expect(loadServerConfig({ env: {}, overrides: base }).topicDefaults.cleanupPolicy).toBe("delete");
  });

  it("names the environment variable a bad value came from", () => {
    expect(invalid(() => loadServerConfig({ env: { FLOTILLA_LOG_RETENTION_BYTES: "lots" }, overrides: base })).message).toMatch(
      /log.retention.bytes=lots \(from environment FLOTILLA_LOG_RETENTION_BYTES\)/,
    );
  });
});

describe("process roles and the controller quorum", () => {
  it("accepts a combined voter, a broker-only node and a controller-only node of a 3-voter quorum", () => {
    const voters = "1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094";
    const combined = loadServerConfig({ env: {}, overrides: { "node.id": "1", "controller.quorum.voters": voters, listeners: "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19092" } });
    expect(combined.processRoles).toEqual(["broker", "controller"]);
    expect(combined.controllerQuorumVoters.map((v) => v.id)).toEqual([1, 2, 3]);
    expect(combined).toMatchObject({ uncleanLeaderElectionEnable: false, autoLeaderRebalanceEnable: true, leaderImbalanceCheckIntervalMs: 300_000, controllerQuorumElectionTimeoutMs: 1000 });
    const broker = loadServerConfig({ env: {}, overrides: { "node.id": "7", "process.roles": "broker", "controller.quorum.voters": voters, listeners: "PLAINTEXT://127.0.0.1:9095" } });
    expect(broker.processRoles).toEqual(["broker"]);
    const controller = loadServerConfig({ env: {}, overrides: { "node.id": "2", "process.roles": "controller", "controller.quorum.voters": voters, listeners: "CONTROLLER://127.0.0.1:19093" } });
    expect(controller.processRoles).toEqual(["controller"]);
  });
});

describe("Kafka listener limits", () => {
  it("reads socket.request.max.bytes and connections.max.idle.ms with Kafka's defaults, and rejects nonsense", () => {
    const defaults = loadServerConfig({ env: {}, overrides: base });
    expect(defaults.socketRequestMaxBytes).toBe(104_857_600);
    expect(defaults.connectionsMaxIdleMs).toBe(600_000);
    const set = loadServerConfig({ env: { FLOTILLA_SOCKET_REQUEST_MAX_BYTES: "2048" }, overrides: { ...base, "connections.max.idle.ms": "5000" } });
    expect(set.socketRequestMaxBytes).toBe(2048);
    expect(set.connectionsMaxIdleMs).toBe(5000);
    expect(invalid(() => loadServerConfig({ env: {}, overrides: { ...base, "socket.request.max.bytes": "12" } })).message).toMatch(/socket\.request\.max\.bytes/);
  });
});

describe("fsync policy (log.flush.interval.messages / log.flush.interval.ms)", () => {
  it("leaves fsync to the OS by default, as Kafka does, and passes settable intervals to the logs", () => {
    const defaults = toLogConfig(loadServerConfig({ env: {}, overrides: base }).topicDefaults);
    expect(defaults.flushIntervalMessages).toBeUndefined();
    expect(defaults.flushIntervalMs).toBeUndefined();
    const set = toLogConfig(loadServerConfig({ env: {}, overrides: { ...base, "log.flush.interval.messages": "1000", "log.flush.interval.ms": "250" } }).topicDefaults);
    expect(set.flushIntervalMessages).toBe(1000);
    expect(set.flushIntervalMs).toBe(250);
    expect(invalid(() => loadServerConfig({ env: {}, overrides: { ...base, "log.flush.interval.messages": "0" } })).message).toContain("log.flush.interval.messages");
  });
});
