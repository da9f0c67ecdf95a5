// Placeholder until the group handlers land; see ../handler.ts.
import type { KafkaHandlerFactory } from "../handler.js";
export const groupHandlers: KafkaHandlerFactory = () => [];
