/**
 * Reads the deployment files the way their engines would and turns each compose service
 * or StatefulSet pod into what a container would run: argv, working directory and
 * environment. Then maps that container onto this machine (there is no Docker engine or
 * Kubernetes here, see deploy.test.ts):
 *   - each service's or pod's DNS name -> its own loopback address (127.X.Y.11, ...), in
 *     every environment value (tests must not edit /etc/hosts);
 *   - a wildcard bind (0.0.0.0) -> that address, since in a container 0.0.0.0 means "the
 *     container's own interfaces";
 *   - paths under a volume's mount point -> a temporary directory per container;
 *   - the image's WORKDIR (/app) -> the repository root, where the same sources are.
 * Ports stay as written: each container has an address of its own.
 */
import fs from "node:fs";
import path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { parse, parseAllDocuments } from "yaml";
import { REPO_ROOT } from "../helpers/processes.js";

export const DEPLOY = path.join(REPO_ROOT, "deploy");
/** The image's WORKDIR, where the repository's files are in the image. */
export const IMAGE_WORKDIR = "/app";

export interface ComposeService {
  image?: string;
  hostname?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, { condition: string }> | string[];
  stop_grace_period?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function readCompose(): ComposeFile {
  // merge: true for the `<<: *anchor` merge keys, which Compose reads too.
  return parse(fs.readFileSync(path.join(DEPLOY, "docker-compose.yml"), "utf8"), { merge: true }) as ComposeFile;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** Every document of every file that kustomization.yaml lists, with the file it came from. */
export function readK8s(): { kustomization: { resources: string[] }; objects: { file: string; object: K8sObject }[] } {
  const dir = path.join(DEPLOY, "k8s");
  const kustomization = parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8")) as { resources: string[] };
  const objects = kustomization.resources.flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8")).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return { file, object: doc.toJS() as K8sObject };
    }),
  );
  return { kustomization, objects };
}

export interface DockerfileFacts {
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
  user: string;
  volumes: string[];
  exposed: number[];
  workdir: string;
  args: Record<string, string>;
}

/** The runtime stage's instructions (the last FROM on), as Docker would apply them. */
export function readDockerfile(): DockerfileFacts {
  const df = DockerfileParser.parse(fs.readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8"));
  const instructions = df.getInstructions();
  const args: Record<string, string> = {};
  for (const i of instructions) {
    if (i.getKeyword() !== "ARG") continue;
    const [name, value] = (i.getArgumentsContent() ?? "").split("=", 2);
    if (name && value !== undefined) args[name] = value;
  }
  const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf("FROM");
  const runtime = instructions.slice(lastFrom);
  const one = (keyword: string) => {
    const found = runtime.filter((i) => i.getKeyword() === keyword);
    if (found.length === 0) throw new Error(`the runtime stage has no ${keyword}`);
    return (found[found.length - 1]!.getArgumentsContent() ?? "").trim();
  };
  const json = (keyword: string, text: string) => {
    try {
      const value = JSON.parse(text) as unknown;
      if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) throw new Error("not a list of strings");
      return value as string[];
    } catch (err) {
      throw new Error(`${keyword} ${text} is not in exec (JSON) form: ${(err as Error).message}`);
    }
  };
  const health = one("HEALTHCHECK").replace(/^(--[a-z-]+=\S+\s+)*/, "");
  if (!health.startsWith("CMD ")) throw new Error(`HEALTHCHECK ${health} has no CMD`);
  return {
    entrypoint: json("ENTRYPOINT", one("ENTRYPOINT")),
    cmd: json("CMD", one("CMD")),
    healthcheck: json("HEALTHCHECK", health.slice(4)),
    user: one("USER"),
    volumes: runtime.filter((i) => i.getKeyword() === "VOLUME").flatMap((i) => (i.getArgumentsContent() ?? "").split(/\s+/)),
    exposed: runtime.filter((i) => i.getKeyword() === "EXPOSE").flatMap((i) => (i.getArgumentsContent() ?? "").split(/\s+/).map(Number)),
    workdir: one("WORKDIR"),
    args,
  };
}

/** Expands Kubernetes' `$(VAR)` references in an env value from the variables defined so far. */
export function expandK8sValue(value: string, defined: Record<string, string>): string {
  // $$(VAR) escapes; an unknown $(VAR) stays as written, as the kubelet does.
  return value.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return "$(";
    return Object.hasOwn(defined, name) ? defined[name]! : whole;
  });
}

export interface PodSpecLike {
  containers: {
    name: string;
    command?: string[];
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
    envFrom?: { configMapRef?: { name: string } }[];
    ports?: { name?: string; containerPort: number }[];
    volumeMounts?: { name: string; mountPath: string }[];
    readinessProbe?: { httpGet?: { path: string; port: string | number } };
    livenessProbe?: { httpGet?: { path: string; port: string | number } };
    startupProbe?: { httpGet?: { path: string; port: string | number } };
  }[];
}

/** The environment the kubelet gives a StatefulSet pod's container: envFrom ConfigMaps, then env in order. */
export function renderPodEnv(options: { podName: string; namespace: string; container: PodSpecLike["containers"][number]; configMaps: Map<string, Record<string, string>> }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of options.container.envFrom ?? []) {
    const name = from.configMapRef?.name;
    if (name === undefined) throw new Error("only configMapRef envFrom is rendered");
    const data = options.configMaps.get(name);
    if (!data) throw new Error(`envFrom names ConfigMap ${name}, which the manifests do not define`);
    Object.assign(env, data);
  }
  for (const e of options.container.env ?? []) {
    if (e.value !== undefined) env[e.name] = expandK8sValue(e.value, env);
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = options.podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = options.namespace;
    else throw new Error(`env ${e.name}: only values and metadata.name/namespace field refs are rendered`);
  }
  return env;
}

/**
 * Maps one container's environment onto this machine (see the module comment).
 * `hosts` maps DNS names to loopback addresses; `self` is this container's address;
 * `volumes` maps mount points to local directories.
 */
export function localizeEnv(env: Record<string, string>, options: { hosts: Map<string, string>; self: string; volumes: Map<string, string> }): Record<string, string> {
  const names = [...options.hosts.keys()].sort((a, b) => b.length - a.length);
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const hostPattern = new RegExp(`(?<![A-Za-z0-9.-])(${names.map(escape).join("|")})(?![A-Za-z0-9-])`, "g");
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(env)) {
    let value = raw.replace(hostPattern, (name) => options.hosts.get(name)!);
    value = value.replace(/(^|[\s,/@])0\.0\.0\.0(?=:\d)/g, `$1${options.self}`);
    for (const [mount, local] of options.volumes) {
      value = value.replace(new RegExp(`(^|[,\\s])${escape(mount)}(?=/|$|,)`, "g"), `$1${local}`);
    }
    out[key] = value;
  }
  return out;
}

/** Maps a path in the image to the repository (the image's WORKDIR holds the repository's files). */
export function localPath(imagePath: string): string {
  return imagePath.startsWith(`${IMAGE_WORKDIR}/`) ? path.join(REPO_ROOT, imagePath.slice(IMAGE_WORKDIR.length + 1)) : imagePath;
}
