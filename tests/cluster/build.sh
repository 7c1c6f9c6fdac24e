#!/usr/bin/env bash
# Builds the local control plane's binaries and the tools the tests use (helm,
# promtool) from Go modules, pinned by version, into a cache outside the
# repository. A second run finds them and returns at once.
#
#   tests/cluster/build.sh            build what is missing, print the bin folder
#
# Environment: KADENCE_CACHE (default ~/.cache/kadence); KADENCE_K8S_VERSION, the
# Kubernetes minor version to build (1.30 to 1.36, default the newest), mapped to the
# patch release pinned below. The folder printed, $KADENCE_CACHE/bin/v1.X.Y, holds
# that version's components with the version-independent tools; $KADENCE_CACHE/bin
# itself keeps the newest version's.
set -euo pipefail

# The supported range: one pinned patch release per minor version. The oldest and the
# newest are tested on every CI run (docs/compatibility.md).
declare -A KUBE_PATCH=(
  [1.30]=v1.30.14 [1.31]=v1.31.14 [1.32]=v1.32.13 [1.33]=v1.33.13
  [1.34]=v1.34.4 [1.35]=v1.35.4 [1.36]=v1.36.3
)
NEWEST=1.36
minor_version=${KADENCE_K8S_VERSION:-$NEWEST}
minor_version=${minor_version#v}
KUBE_VERSION=${KUBE_PATCH[$minor_version]:-}
if [ -z "$KUBE_VERSION" ]; then
  echo "build.sh: KADENCE_K8S_VERSION=$minor_version is not supported; choose one of: $(printf '%s\n' "${!KUBE_PATCH[@]}" | sort -V | tr '\n' ' ')" >&2
  exit 1
fi
ETCD_VERSION=v3.5.35
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.21.4
PROMETHEUS_VERSION=v0.316.0  # promtool: checks and unit-tests the chart's alerting rules

cache=${KADENCE_CACHE:-$HOME/.cache/kadence}
bin="$cache/bin"
mkdir -p "$bin" "$cache/logs"

die() { echo "build.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go 1.26 or newer (the machine's toolchain), then run again."
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# One build at a time per cache: a second caller waits for the first.
exec 9>"$cache/build.lock"
flock 9

# wrapper_module DIR MODULE VERSION [STAGING_VERSION]
# Writes a module that requires MODULE@VERSION. A dependency's own replace
# directives are ignored by Go; where they point into its source tree at
# modules it requires as v0.0.0 (k8s.io/kubernetes' staging tree), each is
# replaced by the published module at STAGING_VERSION.
wrapper_module() {
  local dir=$1 module=$2 version=$3 replace_version=${4:-} modfile
  mkdir -p "$dir"
  modfile=$(cd "$dir" && go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [ -f "$modfile" ] || die "could not download $module@$version from the Go module proxy"
  {
    echo "module kadence.local/build"
    grep -E '^go ' "$modfile"
    grep -E '^godebug ' "$modfile" || true
    echo "require $module $version"
    [ -z "$replace_version" ] || awk -v v="$replace_version" '
      /^replace \($/ { inblock = 1; next }
      inblock && /^\)/ { inblock = 0; next }
      inblock && $3 ~ /^\.\.?\// && $3 !~ /FORBIDDEN/ { print "replace " $1 " => " $1 " " v }
    ' "$modfile"
  } > "$dir/go.mod"
}

# build NAME PACKAGE MODULE_DIR [LDFLAGS]
build() {
  local name=$1 pkg=$2 dir=$3 ldflags=${4:-} log="$cache/logs/build-$1.log" start
  local out="$bin/$name"
  [ -x "$out" ] && return 0
  echo "building $name ($pkg) ... log: $log" >&2
  start=$(date +%s)
  if ! (cd "$dir" && go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "building $name failed (full log: $log)"
  fi
  mv "$out.tmp" "$out"
  echo "built $name in $(( $(date +%s) - start ))s" >&2
}

kube_dir="$cache/src/kubernetes-$KUBE_VERSION"
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
need_kube=0
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$bin/$c-$KUBE_VERSION" ] || need_kube=1
done
if [ $need_kube = 1 ]; then
  [ -f "$kube_dir/go.mod" ] || wrapper_module "$kube_dir" k8s.io/kubernetes "$KUBE_VERSION" "v0.${KUBE_VERSION#v1.}"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    build "$c-$KUBE_VERSION" "k8s.io/kubernetes/cmd/$c" "$kube_dir" "$kube_ldflags"
  done
fi

etcd_dir="$cache/src/etcd-$ETCD_VERSION"
if [ ! -x "$bin/etcd-$ETCD_VERSION" ]; then
  [ -f "$etcd_dir/go.mod" ] || wrapper_module "$etcd_dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  build "etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$etcd_dir"
fi

# install_tool NAME PACKAGE VERSION [TAGS]
install_tool() {
  local name=$1 pkg=$2 version=$3 tags=${4:-} log="$cache/logs/build-$1.log" start
  [ -x "$bin/$name-$version" ] && return 0
  echo "installing $name $version ... log: $log" >&2
  start=$(date +%s)
  local gobin="$cache/src/gobin-$name-$version"
  if ! GOBIN="$gobin" go install -tags "$tags" "$pkg@$version" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "installing $name failed (full log: $log)"
  fi
  mv "$gobin/$name" "$bin/$name-$version"
  echo "installed $name in $(( $(date +%s) - start ))s" >&2
}
install_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
install_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
# remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE, ...), which
# promtool needs only to check a Prometheus configuration that uses them.
install_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION" remove_all_sd

# One folder per Kubernetes version. The bin folder itself keeps the newest version's
# components, and always the tools that do not depend on the version (helm, promtool).
version_bin="$bin/$KUBE_VERSION"
mkdir -p "$version_bin"
link_components() { # FOLDER PREFIX
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn "$2$c-$KUBE_VERSION" "$1/$c"; done
}
link_tools() { # FOLDER PREFIX
  ln -sfn "$2etcd-$ETCD_VERSION" "$1/etcd"
  ln -sfn "$2kwok-$KWOK_VERSION" "$1/kwok"
  ln -sfn "$2helm-$HELM_VERSION" "$1/helm"
  ln -sfn "$2promtool-$PROMETHEUS_VERSION" "$1/promtool"
}
link_components "$version_bin" ../
link_tools "$version_bin" ../
link_tools "$bin" ""
[ "$minor_version" != "$NEWEST" ] || link_components "$bin" ""
echo "$version_bin"
