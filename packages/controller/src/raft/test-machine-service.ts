/** Serves the RaftTestMachine gRPC service (proto/flotilla/raft/v1/raft.proto) from a driver and the list machine. */
import type * as grpc from "@grpc/grpc-js";
import { serviceClientCtor, toServiceError } from "@flotilla/protocol";
import type { RaftDriver } from "./driver.js";
import type { AppendOnlyListMachine } from "./test-machine.js";
import { RAFT_PROTO, RAFT_TEST_MACHINE_SERVICE } from "./wire.js";

export interface ProposeRequest {
  data: Uint8Array;
  timeoutMs: number;
}
export interface ProposeResponse {
  index: number;
  term: number;
}
export type ReadConsistency = "LINEARIZABLE" | "LOCAL";
export interface ReadRequest {
  consistency: ReadConsistency;
  fromPosition: number;
  maxItems: number;
  timeoutMs: number;
}
export interface ReadResponse {
  applied: number;
  total: number;
  items: { index: number; term: number; data: Uint8Array }[];
}
export interface StatusResponse {
  id: number;
  role: string;
  term: number;
  leader: number;
  leaderAddress: string;
  commit: number;
  applied: number;
  lastIndex: number;
}

/** Items per Read answer when the request asks for 0 or more. */
export const READ_ITEMS_MAX = 1000;

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

function unary<Req, Res>(fn: (req: Req) => Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}

export function addRaftTestMachineService(server: grpc.Server, options: { driver: RaftDriver; machine: AppendOnlyListMachine }): void {
  const { driver, machine } = options;
  const ctor = serviceClientCtor(RAFT_PROTO, RAFT_TEST_MACHINE_SERVICE);
  const read = (req: ReadRequest): ReadResponse => {
    const max = req.maxItems === 0 ? READ_ITEMS_MAX : Math.min(req.maxItems, READ_ITEMS_MAX);
    return { applied: driver.status().applied, total: machine.size, items: [...machine.slice(req.fromPosition, max)] };
  };
  server.addService(ctor.service, {
    propose: unary<ProposeRequest, ProposeResponse>((req) => driver.propose(req.data, req.timeoutMs > 0 ? { timeoutMs: req.timeoutMs } : {})),
    read: unary<ReadRequest, ReadResponse>(async (req) => {
      if (req.consistency === "LINEARIZABLE") await driver.readIndex(req.timeoutMs > 0 ? { timeoutMs: req.timeoutMs } : {});
      return read(req);
    }),
    status: unary<object, StatusResponse>(async () => {
      const s = driver.status();
      return { id: s.id, role: s.role, term: s.term, leader: s.leader, leaderAddress: driver.leaderAddress() ?? "", commit: s.commit, applied: s.applied, lastIndex: s.lastIndex };
    }),
  });
}
