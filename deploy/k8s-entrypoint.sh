#!/bin/sh
# Kubernetes entrypoint of the Flotilla image: node.id = StatefulSet pod ordinal + 1
# (flotilla-0 is node 1), so the ids match controller.quorum.voters in the ConfigMap and
# stay the same across rescheduling, because a StatefulSet pod keeps its name and volume.
# Kafka node ids may be 0, but 1..N reads the same in compose and Kubernetes.
# Everything else comes from FLOTILLA_* variables (ConfigMap + pod env), as usual.
set -eu
: "${POD_NAME:?POD_NAME must be set from the downward API (fieldRef metadata.name)}"
ordinal="${POD_NAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*)
    echo "k8s-entrypoint: POD_NAME=$POD_NAME does not end in -<ordinal>; is this a StatefulSet pod?" >&2
    exit 2
    ;;
esac
FLOTILLA_NODE_ID=$((ordinal + 1))
export FLOTILLA_NODE_ID
exec node --no-memory-reducer --heap-growing-percent=200 --import tsx packages/cli/src/main.ts "$@"
