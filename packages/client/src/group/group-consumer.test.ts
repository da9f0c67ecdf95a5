import { describe, expect, it } from "vitest";
import { GroupConsumer } from "./group-consumer.js";

const base = { bootstrapServers: "127.0.0.1:1", groupId: "g" };

// Behaviour against a coordinator is tested in test/integration/group-consumer.test.ts (the
// real coordinator engine in-process) and test/integration/groups.test.ts (real processes).
describe("GroupConsumer options", () => {
  it("rejects bad options with INVALID_CONFIG naming the option", () => {
    expect(() => new GroupConsumer({ ...base, groupId: "" })).toThrow(/INVALID_CONFIG.*groupId/);
    expect(() => new GroupConsumer({ ...base, sessionTimeoutMs: 3000, heartbeatIntervalMs: 3000 })).toThrow(/INVALID_CONFIG.*heartbeatIntervalMs/);
    expect(() => new GroupConsumer({ ...base, partitionAssigners: ["sticky"] })).toThrow(/INVALID_CONFIG.*sticky/);
    expect(() => new GroupConsumer({ ...base, autoCommitIntervalMs: -1 })).toThrow(/INVALID_CONFIG.*autoCommitIntervalMs/);
  });

  it("rebalances cooperatively only when every assignor can (Kafka's rule)", async () => {
    const eager = new GroupConsumer(base);
    const mixed = new GroupConsumer({ ...base, partitionAssigners: ["cooperative-sticky", "range"] });
    const coop = new GroupConsumer({ ...base, partitionAssigners: ["cooperative-sticky"] });
    expect([eager.rebalanceProtocol, mixed.rebalanceProtocol, coop.rebalanceProtocol]).toEqual(["eager", "eager", "cooperative"]);
    await Promise.all([eager.disconnect(), mixed.disconnect(), coop.disconnect()]);
  });

  it("needs subscribe() with at least one topic before polling", async () => {
    const c = new GroupConsumer(base);
    await expect(c.poll({ timeoutMs: 10 })).rejects.toThrow(/subscribe/);
    expect(() => c.subscribe({ topics: [] })).toThrow(/INVALID_REQUEST/);
    await c.disconnect();
    expect(() => c.subscribe({ topics: ["t"] })).toThrow(/closed/);
  });
});
