export { DEFAULT_LOG_CONFIG, SEGMENT_BYTES_MAX, validateLogConfig, type LogConfig } from "./config.js";
export {
  CLEAN_SHUTDOWN_FILE,
  OPEN_SEGMENTS_MAX_DEFAULT,
  PartitionLog,
  type AppendInfo,
  type PartitionLogOptions,
  type ReadOptions,
  type ReadResult,
  type RecoveryInfo,
  type SegmentInfo,
} from "./partition-log.js";
export {
  LogManager,
  RETENTION_CHECK_INTERVAL_MS_DEFAULT,
  parseTopicPartitionDir,
  topicPartitionDirName,
  type LogManagerOptions,
  type TopicPartition,
} from "./log-manager.js";
export { segmentFileName, LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX } from "./segment.js";
export { LeaderEpochCache, LEADER_EPOCH_CHECKPOINT_FILE, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEntry } from "./leader-epoch-cache.js";
