#!/usr/bin/env bash
# The one-shot device check (benchmarks/device_check.py): inference, training and bfloat16 numbers
# of one GPU/TPU in one table, each row printed as it finishes, in at most 8 minutes.
#
#   bash benchmarks/device_check.sh [--wheels DIR] [--time-limit 480] [--parts inference,train,...]
#   bash benchmarks/device_check.sh --dry-run        # on a CPU at tiny sizes (CI runs this)
#
# It installs nothing from a network. The machine must have jax with its accelerator plugin, flax,
# optax, orbax-checkpoint, numpy, pillow, opencv, tqdm, absl and torch; what else the check imports
# (ml-collections) comes from the wheels in DIR (default: ./.whl if present), installed with
# pip --no-index into a private folder. Prepare them where pip reaches PyPI, e.g.:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ml-collections==1.1.0
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
wheels=""
args=()
while (($#)); do
  case "$1" in
    --wheels) wheels="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ -z "$wheels" && -d .whl ]]; then wheels=.whl; fi
if [[ -n "$wheels" ]]; then
  site="${TMPDIR:-/tmp}/stm_jax_device_check_site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" \
    "$wheels"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$python" - <<'PY'
import importlib.util, sys
needed = ["jax", "flax", "optax", "orbax.checkpoint", "ml_collections", "numpy", "PIL", "cv2",
          "tqdm", "absl", "torch"]
missing = [m for m in needed if importlib.util.find_spec(m.split(".")[0]) is None]
if missing:
    sys.exit(f"device_check: missing {', '.join(missing)}; bring their wheels: --wheels DIR")
PY
export PYTHONUNBUFFERED=1
exec "$python" -m benchmarks.device_check ${args[@]+"${args[@]}"}
