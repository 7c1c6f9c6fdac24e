#!/usr/bin/env bash
# make demo: the local control plane, the CRDs, the operator and the examples,
# with a live view of schedules and tasks. Ctrl-C stops the operator and the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${KADENCE_CACHE:-$HOME/.cache/kadence}
bin=$(bash tests/cluster/build.sh)   # this Kubernetes version's tools (KADENCE_K8S_VERSION)
state=$cache/demo-cluster   # its own control plane, apart from `make cluster-up`'s
eval "$(.venv/bin/python -m tests.cluster up --dir "$state" | tail -n 1)"
kubectl=("$bin/kubectl")

log=$(mktemp -t kadence-operator.XXXX.log)
cleanup() {
  trap - EXIT INT TERM HUP
  [ -n "${operator_pid:-}" ] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  .venv/bin/python -m tests.cluster down --dir "$state"
  echo "operator log: $log"
}
trap cleanup EXIT INT TERM HUP

"${kubectl[@]}" apply --server-side -f crds/ >/dev/null
"${kubectl[@]}" wait --for=condition=Established --timeout=60s crd/schedules.kadence.dev crd/tasks.kadence.dev >/dev/null
# The admission policies, as in a real installation: without them the operator makes no Job.
"${kubectl[@]}" apply -f deploy/base/admissionpolicy.yaml >/dev/null
.venv/bin/kadence run --config hack/demo-config.yaml --liveness-port 0 --metrics-port 0 >"$log" 2>&1 &
operator_pid=$!

"${kubectl[@]}" create namespace demo --dry-run=client -o yaml | "${kubectl[@]}" apply -f - >/dev/null
"${kubectl[@]}" apply -n demo -k examples/

while true; do
  clear
  date -u +"%Y-%m-%dT%H:%M:%SZ   kadence demo (Ctrl-C to stop; KUBECONFIG=$KUBECONFIG)"
  "${kubectl[@]}" get schedules -n demo
  echo
  "${kubectl[@]}" get tasks -n demo --sort-by=.metadata.creationTimestamp | tail -n 15
  kill -0 "$operator_pid" 2>/dev/null || { echo "the operator stopped; see $log"; exit 1; }
  sleep 2
done
