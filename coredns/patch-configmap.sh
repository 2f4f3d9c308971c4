#!/usr/bin/env bash
# Adds the egress.svc server block (coredns/Corefile.egress) to the cluster's CoreDNS, and with
# --node-local to NodeLocal DNSCache as well. Idempotent: run it again at any time; a block that
# forwards to another address (the Service was recreated) gets the Service's address.
#
#   coredns/patch-configmap.sh [--node-local] [--dry-run]
#
# The zone and the forward address are read from the cluster (kubectl apply -k k8s/ first): the
# zone from the egress-dns ConfigMap's dns.zone, the address from the egress-dns Service, whatever
# clusterIP Kubernetes gave it or you pinned. Needs kubectl with access to kube-system and the
# egress namespace; nothing else (no jq).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
node_local=false
dry_run=false
for arg in "$@"; do
  case "$arg" in
    --node-local) node_local=true ;;
    --dry-run) dry_run=true ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "patch-configmap.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

cluster_ip="$(kubectl -n egress get service egress-dns -o jsonpath='{.spec.clusterIP}')"
if [[ -z "$cluster_ip" || "$cluster_ip" == None ]]; then
  echo "patch-configmap.sh: service egress/egress-dns has no clusterIP; apply k8s/ first" >&2
  exit 1
fi

# dns.zone of the config the server runs (comments dropped; block or flow style).
config="$(kubectl -n egress get configmap egress-dns -o jsonpath='{.data.config\.yaml}')"
zone="$(sed 's/#.*//' <<<"$config" | grep -oE '\bzone:[[:space:]]*["'"'"']?[A-Za-z0-9.-]+' | head -1 |
  sed -E 's/^zone:[[:space:]]*["'"'"']?//; s/\.$//')" || true
if [[ -z "$zone" ]]; then
  echo "patch-configmap.sh: no dns.zone in configmap egress/egress-dns (key config.yaml); apply k8s/ first" >&2
  exit 1
fi

# The block without its comments, for the server's zone, forwarding to the Service's address.
block="$(grep -v '^[[:space:]]*#' "$here/Corefile.egress" | sed '/^[[:space:]]*$/d' |
  sed -E "s|^[^[:space:]]+:53[[:space:]]*\\{|$zone:53 {|; s|^([[:space:]]*forward \\. ).*|\\1$cluster_ip|")"

# The Corefile with every forward address of the zone's server block set to $3 (nested blocks such
# as forward's own options are followed by counting braces); other blocks untouched.
set_forward() {
  awk -v zone="$2" -v ip="$3" '
    BEGIN { zre = zone; gsub(/[.]/, "[.]", zre); head = "^[ \t]*" zre "[.]?(:53)?[ \t]*[{][ \t]*$" }
    {
      if (!inblock && $0 ~ head) { inblock = 1; depth = 0 }
      if (inblock) {
        if ($0 ~ /^[ \t]*forward[ \t]+\.[ \t]/) sub(/forward[ \t]+\.[ \t]+[^{]*[^ \t{]/, "forward . " ip)
        line = $0
        depth += gsub(/[{]/, "{", line) - gsub(/[}]/, "}", line)
        if (depth <= 0) inblock = 0
      }
      print
    }' <<<"$1"
}

# Writes a merge patch for data.Corefile as YAML (kubectl patch takes YAML), so no JSON escaping.
patch_file="$(mktemp)"
trap 'rm -f "$patch_file"' EXIT
write_patch() {
  {
    echo 'data:'
    echo '  Corefile: |'
    printf '%s\n' "$1" | sed 's/^/    /'
  } >"$patch_file"
}

apply_block() {
  local configmap="$1" new_block="$2"
  local corefile
  corefile="$(kubectl -n kube-system get configmap "$configmap" -o jsonpath='{.data.Corefile}')"
  if grep -qE "^[[:space:]]*${zone//./\\.}\\.?(:53)?[[:space:]]*\\{" <<<"$corefile"; then
    local updated
    updated="$(set_forward "$corefile" "$zone" "$cluster_ip")"
    if [[ "$updated" == "$corefile" ]]; then
      echo "$configmap: the $zone block already forwards to $cluster_ip; left as is"
      return
    fi
    echo "$configmap: the $zone block forwards elsewhere; setting its forward address to $cluster_ip"
    write_patch "$updated"
  else
    write_patch "$(printf '%s\n\n%s\n' "$corefile" "$new_block")"
  fi
  if $dry_run; then
    echo "--- kubectl -n kube-system patch configmap $configmap --type merge --patch-file:"
    cat "$patch_file"
    return
  fi
  kubectl -n kube-system patch configmap "$configmap" --type merge --patch-file "$patch_file"
  echo "$configmap: $zone forwarded to $cluster_ip; the reload plugin picks it up within about a minute"
}

apply_block coredns "$block"

if $node_local; then
  # NodeLocal DNSCache answers on its own addresses (the `bind` line of its cluster.local block)
  # and forwards every zone but cluster.local upstream with its own `cache 30`: without this block
  # the zone would go to the node's resolvers, and would be cached for 30 s if it came back.
  corefile="$(kubectl -n kube-system get configmap node-local-dns -o jsonpath='{.data.Corefile}')"
  bind_line="$(grep -m1 -E '^[[:space:]]*bind[[:space:]]' <<<"$corefile" | sed -E 's/^[[:space:]]+//')"
  if [[ -z "$bind_line" ]]; then
    echo "patch-configmap.sh: no bind line in node-local-dns's Corefile; add the block by hand (coredns/README.md)" >&2
    exit 1
  fi
  node_block="$zone:53 {
    errors
    cache 5
    reload
    $bind_line
    forward . $cluster_ip {
        force_tcp
    }
    prometheus :9253
}"
  apply_block node-local-dns "$node_block"
fi
