import { describe, expect, it } from "vitest";
import { DEFAULT_TOPIC_CONFIG, resolveTopicConfig, topicConfigProblem, topicConfigStrings } from "./topic-config.js";

describe("unclean.leader.election.enable as a topic config", () => {
  it.each(["true", "false"])("accepts %s", (value) => {
    expect(topicConfigProblem("unclean.leader.election.enable", value)).toBeUndefined();
  });

  // Only the spellings the controller reads the same way (it compares with "true").
  it.each(["TRUE", "yes", "1", "", " true"])("rejects %j naming the key", (value) => {
    expect(topicConfigProblem("unclean.leader.election.enable", value)).toMatch(/^unclean\.leader\.election\.enable=.*is not true or false/);
  });

  it("defaults to the broker default and an override wins", () => {
    expect(DEFAULT_TOPIC_CONFIG.uncleanLeaderElectionEnable).toBe(false);
    expect(resolveTopicConfig(new Map()).uncleanLeaderElectionEnable).toBe(false);
    const brokerOn = { ...DEFAULT_TOPIC_CONFIG, uncleanLeaderElectionEnable: true };
    expect(resolveTopicConfig(new Map(), brokerOn).uncleanLeaderElectionEnable).toBe(true);
    expect(resolveTopicConfig(new Map([["unclean.leader.election.enable", "false"]]), brokerOn).uncleanLeaderElectionEnable).toBe(false);
    expect(resolveTopicConfig(new Map([["unclean.leader.election.enable", "true"]])).uncleanLeaderElectionEnable).toBe(true);
    expect(topicConfigStrings(resolveTopicConfig(new Map([["unclean.leader.election.enable", "true"]])))["unclean.leader.election.enable"]).toBe("true");
  });
});
