/**
 * Record batches written by other Kafka implementations, for known-answer tests of the
 * decoder. Each is the exact bytes from the named public test data, as hex.
 */

/**
 * Six one-record batches written by Kafka's own Scala/Java producer (kafka-console-producer),
 * as a Kafka broker served them in a Fetch v4 response: the records set of
 * tulios/kafkajs src/protocol/requests/fetch/fixtures/v4_from_scala_producer_response.json
 * (commit 7eed8018e8f08a4de17b93a369d01d128158ec4d), i.e. that file's bytes 91..732.
 * Keys KEY-1..KEY-6, values "VALUE-Lorem ipsum dolor sit amet-1".."-6", offsets 0..5.
 */
export const JAVA_PRODUCER_BATCHES_HEX =
    "00000000000000000000005f000000000222ee4df30000000000000000016679fa31200000016679fa3120ffffffffffffffffffffffffff" +
    "ff000000015a0000000a4b45592d314456414c55452d4c6f72656d20697073756d20646f6c6f722073697420616d65742d31000000000000" +
    "0000010000005f000000000271b60f250000000000000000016679fa33220000016679fa3322ffffffffffffffffffffffffffff00000001" +
    "5a0000000a4b45592d324456414c55452d4c6f72656d20697073756d20646f6c6f722073697420616d65742d320000000000000000020000" +
    "005f0000000002f82986a70000000000000000016679fa351b0000016679fa351bffffffffffffffffffffffffffff000000015a0000000a" +
    "4b45592d334456414c55452d4c6f72656d20697073756d20646f6c6f722073697420616d65742d330000000000000000030000005f000000" +
    "00021c80cbd60000000000000000016679fa37130000016679fa3713ffffffffffffffffffffffffffff000000015a0000000a4b45592d34" +
    "4456414c55452d4c6f72656d20697073756d20646f6c6f722073697420616d65742d340000000000000000040000005f0000000002ce8601" +
    "4a0000000000000000016679fa390c0000016679fa390cffffffffffffffffffffffffffff000000015a0000000a4b45592d354456414c55" +
    "452d4c6f72656d20697073756d20646f6c6f722073697420616d65742d350000000000000000050000005f0000000002c27bc62900000000" +
    "00000000016679fa3b050000016679fa3b05ffffffffffffffffffffffffffff000000015a0000000a4b45592d364456414c55452d4c6f72" +
    "656d20697073756d20646f6c6f722073697420616d65742d3600";

/**
 * A one-record snappy batch (raw snappy, not xerial) as a broker served it: bytes 54..163 of
 * tulios/kafkajs src/protocol/requests/fetch/fixtures/v4_response_snappy.json
 * (commit 39743fa17f1e3a26e22afb03ce100dcef8aa4be7). Key "key-149".
 */
export const KAFKAJS_SNAPPY_BATCH_HEX =
    "000000000000000000000062000000000297ef6eaa00020000000000000168b91290b100000168b91290b1ffffffffffffffff0000000000" +
    "000000000130445e0000000e6b65792d3134394476616c7565010a642d323031392d30322d30345431353a31333a34382e3138375a00";

/**
 * A one-record gzip batch that a Kafka broker stamped with LogAppendTime (attributes 0x0009):
 * tulios/kafkajs src/protocol/recordBatch/fixtures/v0_recordbatch.json
 * (commit 6cb57e1ff88469a35d0e23f0b007de8520a83054). baseTimestamp 1597425188775 (the
 * producer's), maxTimestamp 1597425188809 (the broker's append time).
 */
export const KAFKA_LOG_APPEND_TIME_GZIP_BATCH_HEX =
    "0000000000000000000000710000000002e4c324a500090000000000000173edf5ffa700000173edf5ffc9ffffffffffffffff0000000000" +
    "00000000011f8b08000000000000130b636060e0ca4eadd43570284bcc294dd535d035323032d035b0d03534093134b73234b632b0d033b3" +
    "308a620000b5e3f1a72c000000";

/**
 * A batch whose records section is a zstd frame written by a native zstd encoder (KafkaJS's
 * zstd codec): tulios/kafkajs src/protocol/recordBatch/fixtures/v0_recordbatch_zstd.json
 * (commit c8b7593f21cc23c9aaaec6a9c6e69a089bde0d47). The fixture's attributes are 0 (it does
 * not say zstd); tests set the zstd bits and recompute the CRC before decoding it.
 */
export const KAFKAJS_ZSTD_PAYLOAD_BATCH_HEX =
    "00000000000000000000015e0000038f022acd39f400000000000000000175037b435300000175037b4353ffffffffffffffff0000000000" +
    "000000000128b52ffd005825090096994124a0254907ffffffffe7aa6fb349b977db525e4afaada5bd13c9e9f881d364a06a7f5a9e043a00" +
    "3600360068494e3eec45778cb1e44ccabb474a9c3ac017d7601f4f3f275594681c4e76a303b4a9e253d195233599ce6b8c8e404102637425" +
    "4051140010044db8e7987dba35fd86a952b276c7c20fe4844b12613a6b7a1e3a307533a2e67653523537170b94507978a99619cad4e81a9d" +
    "812ac56c28b18eeab44a492bd60d5968ba2ee5a34ec9c517236a2c3c590e517bf1c8c47cc0e818d55ea344af31abe929a004ac3c1c39636e" +
    "b41c85c9e492d7dcaaf852ce142d919349ebe385c2f579689d92c332758066f243a776562c2cf293a358c335c615eda9288dc72331a08408" +
    "00dcda2c0f1e2dda645f49317c156d002b462b5d8c437f438802";
