export { DEFAULT_LOG_CONFIG, SEGMENT_BYTES_MAX, appliesRetention, isCompacted, validateLogConfig, type LogConfig } from "./config.js";
export {
  CLEANER_OFFSET_CHECKPOINT_FILE,
  DEDUPE_BUFFER_BYTES_DEFAULT,
  LOG_CLEANER_BACKOFF_MS_DEFAULT,
  cleanLog,
  planCleaning,
  type CleanResult,
} from "./log-cleaner.js";
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
  CLEANER_LOGS_PER_ROUND_DEFAULT,
  LogManager,
  RETENTION_CHECK_INTERVAL_MS_DEFAULT,
  parseTopicPartitionDir,
  topicPartitionDirName,
  type LogManagerOptions,
  type TopicPartition,
} from "./log-manager.js";
export { segmentFileName, LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX } from "./segment.js";
export { LeaderEpochCache, LEADER_EPOCH_CHECKPOINT_FILE, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEntry } from "./leader-epoch-cache.js";
