import { assert, ErrorCodes } from "@flotilla/common";
import { apiVersionsApi, type KafkaApiVersionRange, type KafkaApiVersionsRequest, type KafkaApiVersionsResponse } from "@flotilla/protocol/kafka";
import type { KafkaBackends, KafkaHandler, KafkaHandlerFactory } from "./handler.js";
import { dataHandlers } from "./handlers/data.js";
import { groupHandlers } from "./handlers/groups.js";

/**
 * The table of served Kafka APIs: api key -> handler. ApiVersions is always present and
 * answers with the key and version range of every handler in the table, so what a client
 * negotiates is exactly what the listener will accept.
 */
export class KafkaHandlerRegistry {
  private readonly byKey = new Map<number, KafkaHandler>();

  constructor(handlers: readonly KafkaHandler[]) {
    for (const h of [apiVersionsHandler(this), ...handlers]) {
      const { apiKey, name, minVersion, maxVersion } = h.spec;
      assert(!this.byKey.has(apiKey), () => `two Kafka handlers for api key ${apiKey} (${name})`);
      assert(Number.isInteger(minVersion) && minVersion >= 0 && maxVersion >= minVersion, () => `Kafka handler ${name} has a bad version range ${minVersion}-${maxVersion}`);
      this.byKey.set(apiKey, h);
    }
  }

  get(apiKey: number): KafkaHandler | undefined {
    return this.byKey.get(apiKey);
  }

  /** Every served API's key and versions, by key (what ApiVersions reports). */
  versions(): KafkaApiVersionRange[] {
    return [...this.byKey.values()]
      .map((h) => ({ apiKey: h.spec.apiKey, minVersion: h.spec.minVersion, maxVersion: h.spec.maxVersion }))
      .sort((a, b) => a.apiKey - b.apiKey);
  }

  /**
   * The answer to an ApiVersions request at a version above the ones we serve: Kafka's
   * UNSUPPORTED_VERSION with our version list, encoded as v0, so the client retries with
   * a version from the list.
   */
  unsupportedApiVersionsResponse(): KafkaApiVersionsResponse {
    return { errorCode: ErrorCodes.UNSUPPORTED_VERSION.code, apiKeys: this.versions(), throttleTimeMs: 0 };
  }
}

function apiVersionsHandler(registry: KafkaHandlerRegistry): KafkaHandler<KafkaApiVersionsRequest, KafkaApiVersionsResponse> {
  return {
    spec: apiVersionsApi,
    handle: async () => ({ errorCode: 0, apiKeys: registry.versions(), throttleTimeMs: 0 }),
  };
}

/** The handler factories a broker serves: the data path (Produce, Fetch, Metadata, ...) and the group APIs. */
export const DEFAULT_KAFKA_HANDLER_FACTORIES: readonly KafkaHandlerFactory[] = [dataHandlers, groupHandlers];

/** Builds the broker's table from the handler factories. */
export function buildKafkaRegistry(backends: KafkaBackends, factories: readonly KafkaHandlerFactory[] = DEFAULT_KAFKA_HANDLER_FACTORIES): KafkaHandlerRegistry {
  return new KafkaHandlerRegistry(factories.flatMap((f) => f(backends)));
}
