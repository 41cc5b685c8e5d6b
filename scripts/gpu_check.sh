#!/usr/bin/env bash
# The GPU side of the throughput numbers (issue 10 item 7), in one command that fits one device call:
# env-steps/s of the tracking env (benchmark_env.py) and of end-to-end training (benchmark_train.py)
# on CUDA with the warp backend at 1024 and 4096 envs, then 20 iterations of the sonic_release preset.
#
#   scripts/gpu_check.sh fetch     # here (network): wheels the device image lacks -> .whl/
#   scripts/gpu_check.sh           # on the GPU machine, from the repo root (.whl carried along)
#
# Environment: ENVS="1024 4096" (env counts), ITERATIONS=20 (sonic_release), OUT (logs; default
# /tmp/gpu_check). Every result line starts with "RESULT", so `grep ^RESULT` gives the table.
set -uo pipefail
cd "$(dirname "$0")/.."

# Packages the device image (Python 3.12, torch preinstalled) lacks, pinned to the versions here.
WHEELS=(mujoco mujoco-warp warp-lang mjlab glfw pyopengl etils absl-py hydra-core omegaconf
        antlr4-python3-runtime prettytable rsl-rl-lib tensordict torchrunx tyro docstring-parser
        typeguard shtab mediapy trimesh viser mjviser imageio-ffmpeg wandb vector-quantize-pytorch
        einx loguru torch-einops-utils mink qpsolvers gitpython gitdb smmap)

if [[ "${1:-}" == "fetch" ]]; then
    mkdir -p .whl
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    for name in "${WHEELS[@]}"; do
        version=$(python -m pip show "$name" 2>/dev/null | awk '/^Version:/ {print $2}')
        spec="$name${version:+==$version}"
        python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
            -d .whl "$spec" || echo "fetch: no wheel for $spec (install it on the device another way)"
    done
    du -sh .whl
    exit 0
fi

OUT="${OUT:-/tmp/gpu_check}"
ENVS="${ENVS:-1024 4096}"
ITERATIONS="${ITERATIONS:-20}"
mkdir -p "$OUT"
export MUJOCO_GL=egl PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    || exit 1

run() {  # run NAME CMD...: log to $OUT/NAME.log, print its last line as a RESULT
    local name=$1; shift
    local start=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    echo "RESULT $name rc=$? $((SECONDS - start))s: $(tail -n 1 "$OUT/$name.log")"
}

for n in $ENVS; do
    run "env_$n" python3 scripts/benchmark_env.py --device cuda:0 --backend warp --num-envs "$n"
    run "train_$n" python3 scripts/benchmark_train.py --device cuda:0 --backend warp --num-envs "$n" --iterations 5
done
for n in $ENVS; do
    run "sonic_release_$n" python3 gear_sonic/train_agent_trl.py \
        +exp=manager/universal_token/all_modes/sonic_release device=cuda:0 num_envs="$n" \
        algo.config.num_learning_iterations="$ITERATIONS" experiment_dir="$OUT/runs/sonic_release_$n"
    csv="$OUT/runs/sonic_release_$n/metrics.csv"
    [[ -f "$csv" ]] && python3 - "$csv" "$n" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rates = [float(r["env_steps_per_s"]) for r in rows[1:]]  # iteration 1 includes warm-up
if rates:
    print(f"RESULT sonic_release_{sys.argv[2]}: {statistics.median(rates):,.0f} env-steps/s (median of {len(rates)} iterations)")
EOF
done
