// Placeholder until the data-path handlers land; see ../handler.ts.
import type { KafkaHandlerFactory } from "../handler.js";
export const dataHandlers: KafkaHandlerFactory = () => [];
