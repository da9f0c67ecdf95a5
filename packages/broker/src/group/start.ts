/**
 * Wiring of the group coordinator into a broker process, kept here so that the
 * composition root (../node.ts) needs only a call, a cleanup and the gRPC option.
 */
import type { Clock } from "@flotilla/common";
import type { Logger } from "@flotilla/common/logger";
import type { MetadataImage } from "@flotilla/metadata";
import type { ControllerChannel } from "../controller-channel.js";
import type { ReplicaManager } from "../replica-manager.js";
import type { GroupCoordinatorConfig } from "./config.js";
import { GroupCoordinatorService } from "./service.js";
import { systemTimer, type Timer } from "./timer.js";

export interface StartGroupCoordinatorOptions {
  readonly nodeId: number;
  readonly listenerName: string;
  readonly config: GroupCoordinatorConfig;
  /** The broker's view of the metadata: its latest image, image changes in order, and topic creation. */
  readonly metadata: { image(): MetadataImage; subscribe(listener: (image: MetadataImage) => void): () => void } & Pick<ControllerChannel, "createTopics">;
  readonly replicas: ReplicaManager;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly timer?: Timer;
}

/** A running coordinator; `close()` stops following the image and unloads every group. */
export function startGroupCoordinator(options: StartGroupCoordinatorOptions): GroupCoordinatorService {
  const { metadata } = options;
  const service = new GroupCoordinatorService({
    nodeId: options.nodeId,
    listenerName: options.listenerName,
    config: options.config,
    image: () => metadata.image(),
    controller: metadata,
    replicas: options.replicas,
    clock: options.clock,
    timer: options.timer ?? systemTimer,
    logger: options.logger.child({ component: "group-coordinator" }),
  });
  void service.applyImage(metadata.image());
  service.onClose(metadata.subscribe((image) => void service.applyImage(image)));
  return service;
}
