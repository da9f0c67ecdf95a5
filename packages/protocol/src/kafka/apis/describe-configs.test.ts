import { describe, expect, it } from "vitest";
import { KafkaReader, KafkaWriter } from "../wire.js";
import { KafkaConfigSource, KafkaConfigType, describeConfigsApi, type KafkaDescribeConfigsResponse } from "./describe-configs.js";

const response: KafkaDescribeConfigsResponse = {
  throttleTimeMs: 0,
  results: [
    {
      errorCode: 0,
      errorMessage: null,
      resourceType: 2,
      resourceName: "orders",
      configs: [
        {
          name: "retention.ms",
          value: "1000",
          readOnly: false,
          isDefault: false,
          configSource: KafkaConfigSource.DYNAMIC_TOPIC_CONFIG,
          isSensitive: false,
          synonyms: [{ name: "retention.ms", value: "1000", source: 1 }],
          configType: KafkaConfigType.LONG,
          documentation: null,
        },
      ],
    },
  ],
};

describe("DescribeConfigs codec", () => {
  for (const version of [0, 1, 3]) {
    it(`decodes a v${version} request (null and listed keys) and writes its response`, () => {
      const w = new KafkaWriter().int32(2);
      w.int8(2).string("orders").int32(-1);
      w.int8(4).string("1").int32(1).string("log.dirs");
      if (version >= 1) w.boolean(true);
      if (version >= 3) w.boolean(true);
      const r = new KafkaReader(w.toBuffer());
      expect(describeConfigsApi.decodeRequest(r, version)).toEqual({
        resources: [
          { resourceType: 2, resourceName: "orders", configurationKeys: null },
          { resourceType: 4, resourceName: "1", configurationKeys: ["log.dirs"] },
        ],
        includeSynonyms: version >= 1,
        includeDocumentation: version >= 3,
      });
      expect(r.remaining).toBe(0);

      const out = new KafkaWriter();
      describeConfigsApi.encodeResponse(out, version, response);
      const rr = new KafkaReader(out.toBuffer());
      expect([rr.int32(), rr.int32(), rr.int16(), rr.nullableString(), rr.int8(), rr.string(), rr.int32()]).toEqual([0, 1, 0, null, 2, "orders", 1]);
      expect([rr.string(), rr.nullableString(), rr.boolean()]).toEqual(["retention.ms", "1000", false]);
      if (version === 0) expect(rr.boolean()).toBe(false); // is_default
      else expect(rr.int8()).toBe(1); // config_source
      expect(rr.boolean()).toBe(false); // is_sensitive
      if (version >= 1) expect(rr.array((s) => [s.string(), s.nullableString(), s.int8()])).toEqual([["retention.ms", "1000", 1]]);
      if (version >= 3) expect([rr.int8(), rr.nullableString()]).toEqual([KafkaConfigType.LONG, null]);
      expect(rr.remaining).toBe(0);
    });
  }
});
