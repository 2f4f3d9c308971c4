#!/usr/bin/env bash
# Adds the egress.svc server block (coredns/Corefile.egress) to the cluster's CoreDNS, and with
# --node-local to NodeLocal DNSCache as well. Idempotent: a Corefile that already has the block
# is left alone.
#
#   coredns/patch-configmap.sh [--node-local] [--dry-run]
#
# The forward address is read from the live egress-dns Service (kubectl apply -k k8s/ first), so
# the Corefile always points where the Service is, whatever clusterIP you chose.
# Needs kubectl with access to kube-system; nothing else (no jq).
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

# The block without its comments, forwarding to the Service's actual address.
block="$(grep -v '^[[:space:]]*#' "$here/Corefile.egress" | sed '/^[[:space:]]*$/d' |
  sed -E "s|^([[:space:]]*forward \\. ).*|\\1$cluster_ip|")"

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
  if grep -qE '^[[:space:]]*egress\.svc(:53)?[[:space:]]*\{' <<<"$corefile"; then
    echo "$configmap: already has an egress.svc block; left as is (edit it with kubectl -n kube-system edit configmap $configmap)"
    return
  fi
  write_patch "$(printf '%s\n\n%s\n' "$corefile" "$new_block")"
  if $dry_run; then
    echo "--- kubectl -n kube-system patch configmap $configmap --type merge --patch-file:"
    cat "$patch_file"
    return
  fi
  kubectl -n kube-system patch configmap "$configmap" --type merge --patch-file "$patch_file"
  echo "$configmap: egress.svc forwarded to $cluster_ip; the reload plugin picks it up within about a minute"
}

apply_block coredns "$block"

if $node_local; then
  # NodeLocal DNSCache answers on its own addresses (the `bind` line of its cluster.local block)
  # and forwards every zone but cluster.local upstream with its own `cache 30`: without this block
  # egress.svc would go to the node's resolvers, and would be cached for 30 s if it came back.
  corefile="$(kubectl -n kube-system get configmap node-local-dns -o jsonpath='{.data.Corefile}')"
  bind_line="$(grep -m1 -E '^[[:space:]]*bind[[:space:]]' <<<"$corefile" | sed -E 's/^[[:space:]]+//')"
  if [[ -z "$bind_line" ]]; then
    echo "patch-configmap.sh: no bind line in node-local-dns's Corefile; add the block by hand (coredns/README.md)" >&2
    exit 1
  fi
  node_block="egress.svc:53 {
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
