/**
 * Where server properties come from, in rising precedence:
 *   1. a Java-properties file (`key=value`, `key: value` or `key value`; `#` and `!`
 *      comments; trailing-backslash continuations; \uXXXX escapes),
 *   2. environment variables FLOTILLA_<NAME>, where <NAME> is the property name upper
 *      cased with dots as underscores (FLOTILLA_LOG_DIRS -> log.dirs),
 *   3. explicit overrides (the CLI's --override key=value).
 * Each value remembers its source so an error can say where a bad value came from.
 */
import { readFileSync } from "node:fs";
import { FlotillaError } from "@flotilla/common";
import { getProperties } from "properties-file";

export const ENV_PREFIX = "FLOTILLA_";
/** FLOTILLA_* variables that are not server properties (read elsewhere). */
const ENV_NOT_PROPERTIES = new Set(["FLOTILLA_LOG_LEVEL"]);

export interface PropertyValue {
  readonly value: string;
  /** e.g. "file /etc/flotilla/server.properties", "environment FLOTILLA_NODE_ID", "override". */
  readonly source: string;
}

export type RawProperties = Map<string, PropertyValue>;

export interface ConfigSources {
  /** Path of a properties file; undefined for none. */
  readonly file?: string | undefined;
  /** Environment to read FLOTILLA_* variables from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Explicit key=value settings; they win over the file and the environment. */
  readonly overrides?: Readonly<Record<string, string>>;
}

/** The property name an environment variable sets, or undefined if it sets none. */
export function propertyNameOfEnv(variable: string): string | undefined {
  if (!variable.startsWith(ENV_PREFIX) || ENV_NOT_PROPERTIES.has(variable)) return undefined;
  const rest = variable.slice(ENV_PREFIX.length);
  if (!/^[A-Z0-9_]+$/.test(rest)) return undefined;
  return rest.toLowerCase().replaceAll("_", ".");
}

/** The environment variable that sets a property (log.dirs -> FLOTILLA_LOG_DIRS). */
export function envNameOfProperty(name: string): string {
  return ENV_PREFIX + name.toUpperCase().replaceAll(".", "_").replaceAll("-", "_");
}

export function readPropertiesFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new FlotillaError("INVALID_CONFIG", `cannot read the config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return getProperties(text);
}

/** Merges the sources by precedence; values are trimmed as Kafka does. */
export function collectProperties(sources: ConfigSources): RawProperties {
  const out: RawProperties = new Map();
  if (sources.file !== undefined) {
    for (const [key, value] of Object.entries(readPropertiesFile(sources.file))) out.set(key.trim(), { value: value.trim(), source: `file ${sources.file}` });
  }
  const env = sources.env ?? process.env;
  for (const [variable, value] of Object.entries(env)) {
    const name = propertyNameOfEnv(variable);
    if (name !== undefined && value !== undefined) out.set(name, { value: value.trim(), source: `environment ${variable}` });
  }
  for (const [key, value] of Object.entries(sources.overrides ?? {})) out.set(key.trim(), { value: String(value).trim(), source: "override" });
  return out;
}
