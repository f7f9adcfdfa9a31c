#!/usr/bin/env bash
# Screenshots of MLflow's own UI on a store, in headless Chromium (Debian: `apt-get install chromium`): the runs table
# and the chart view of one experiment, as a user opens them from the links `harness run` prints. Writes
# docs/mlflow-ui-runs.png and docs/mlflow-ui-charts.png.
#
#   scripts/ui-screenshots.sh [STORE_URI] [EXPERIMENT_NAME]   (default: ./mlruns/mlflow.db, mnist-clutter-proxy)
set -euo pipefail
uri=${1:-sqlite:///$PWD/mlruns/mlflow.db}
experiment=${2:-mnist-clutter-proxy}
port=${PORT:-5091}
out=${OUT:-docs}
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chromium" ] || { echo "ui-screenshots: no chromium on PATH (Debian: apt-get install chromium)" >&2; exit 1; }
mkdir -p "$out"
exp_id=$(python - "$uri" "$experiment" <<'EOF'
import sys
from mlflow.tracking import MlflowClient
e = MlflowClient(sys.argv[1]).get_experiment_by_name(sys.argv[2])
if e is None:
    sys.exit(f"ui-screenshots: no experiment {sys.argv[2]!r} in {sys.argv[1]}")
print(e.experiment_id)
EOF
)
python -m harness ui --port "$port" --tracking-uri "$uri" > "$out/.ui.log" 2>&1 &
ui=$!
trap 'kill $ui 2>/dev/null || true; wait $ui 2>/dev/null || true; rm -f "$out/.ui.log"' EXIT
for _ in $(seq 180); do
    python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null && break
    sleep 1
done
base="http://127.0.0.1:$port/#/experiments/$exp_id/runs?workflowType=machine_learning"
shoot() {  # URL FILE HEIGHT
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1800,"$3" \
        --virtual-time-budget=${BUDGET_MS:-90000} --screenshot="$2" "$1" 2>/dev/null
    echo "$2: $1"
}
shoot "$base" "$out/mlflow-ui-runs.png" 1100
shoot "$base&compareRunsMode=CHART" "$out/mlflow-ui-charts.png" 3300  # tall: every metric's chart, val_top1 included
