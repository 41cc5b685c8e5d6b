#!/usr/bin/env bash
# Installs gear_sonic and its dependencies; CI (.ci/run) and the Dockerfile both run this script.
#   bash scripts/install.sh [auto|cpu|cuda]     (default auto: cuda when nvidia-smi is present)
# GEAR_SONIC_EXTRAS picks the extras (default "test"); TORCH_INDEX_URL, when set, is where the
# CPU build of torch comes from (the Dockerfile's CPU image sets the PyTorch CPU index).
set -euo pipefail
cd "$(dirname "$0")/.."

flavor="${1:-auto}"
extras="${GEAR_SONIC_EXTRAS:-test}"
torch_pins=(torch==2.13.0 torchvision==0.28.0)

if [[ "$flavor" == "auto" ]]; then
  # A GPU machine keeps the torch it has (as CI always did); a CPU machine gets the pinned CPU one.
  if command -v nvidia-smi >/dev/null 2>&1; then flavor=keep; else flavor=cpu; fi
fi
case "$flavor" in
  cpu)
    # An unpinned torchvision would pull a multi-GB CUDA build of torch.
    python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "${torch_pins[@]}"
    ;;
  cuda)
    # PyPI's Linux wheels of torch are the CUDA build (its CUDA libraries come as wheels too).
    python -m pip install -q "${torch_pins[@]}"
    ;;
  keep) ;;
  *)
    echo "scripts/install.sh: unknown flavor '$flavor': use auto, cpu or cuda" >&2
    exit 2
    ;;
esac
python -m pip install -q -e ".[${extras}]"
