import * as grpc from "@grpc/grpc-js";
import { FlotillaError } from "@flotilla/common";
import { GRPC_CHANNEL_OPTIONS } from "@flotilla/protocol";

/** A gRPC server with Flotilla's message-size limits. */
export function createGrpcServer(): grpc.Server {
  return new grpc.Server({
    "grpc.max_receive_message_length": GRPC_CHANNEL_OPTIONS["grpc.max_receive_message_length"],
    "grpc.max_send_message_length": GRPC_CHANNEL_OPTIONS["grpc.max_send_message_length"],
  });
}

/** Binds `server` to "host:port" (port 0 picks a free one) and resolves with the bound port. */
export function bindGrpcServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new FlotillaError("NETWORK_EXCEPTION", `cannot listen on ${address}: ${err.message}`, { cause: err }));
      else resolve(port);
    });
  });
}

/** Stops accepting calls and waits up to `graceMs` for running ones, then cuts them off. */
export function shutdownGrpcServer(server: grpc.Server, graceMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
