"""Env-steps/s of our tracking env against mjlab's own `Mjlab-Tracking-Flat-Unitree-G1`.

Both envs track the same clip on the same device with the same random actions (so both see
falls and resets); ours computes the larger SONIC observation set (actor 930, critic 1645,
tokenizer dict) and the SONIC rewards. Both envs are built once, then timed in interleaved
blocks ours/mjlab/ours/mjlab... so a noisy machine slows both sides of a pair alike. Each pair
is printed; the last line is `ratio ours/mjlab: X.XX (spread A.AA-B.BB over N pairs)`, the median
of the per-pair ratios and their min-max.

    python scripts/benchmark_env.py --num-envs 64 [--pairs 3] [--device cpu] [--profile]
                                    [--backend auto|native|warp]

`--backend auto` (default) runs our env on the backend training gets by default: the native MuJoCo C
backend (gear_sonic.sim) on CPU, MJWarp on CUDA. mjlab's env always runs on MJWarp, so on CPU the last
line reads `ratio native/mjlab-warp: X.XX (...)`. `--backend warp` compares the two envs on one
engine (last line `ratio ours/mjlab`); ours then does more work per step than mjlab's (SONIC's
per-body undesired-contact sensors, 26 more MuJoCo sensors, and a 930-dim actor observation).

`--task go1_velocity` compares our `+exp=manager/locomotion/go1_velocity` (mjlab's flat Go1 velocity
task rebuilt term for term from our YAML) with mjlab's own `Mjlab-Velocity-Flat-Unitree-Go1`, both on
MJWarp (the task's foot-height scan is a ray-cast sensor, which the native backend does not have);
last line `ratio ours/mjlab: X.XX (...)`.

`--profile` adds, per env, the milliseconds per step spent in physics and in each manager.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--device", default="auto", help="cpu, cuda:0 or auto")
    parser.add_argument("--motion", default=None, help="clip file (default: the first sample walking clip)")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved ours/mjlab timing pairs (>= 1)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per block (default 100 below 64 envs, else 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="print ms/step per manager for both envs")
    parser.add_argument("--task", default="tracking", choices=("tracking", "go1_velocity"),
                        help="G1 motion tracking (default) or the flat Go1 velocity task")
    parser.add_argument("--backend", default="auto", choices=("auto", "native", "warp"),
                        help="backend of our env: auto = native on CPU, warp on CUDA, as in training "
                        "(mjlab's env always runs on warp)")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be >= 1")
    return args


def default_clip() -> Path:
    clips = sorted((REPO_ROOT / "data" / "motions").glob("walk*.npz")) or sorted(
        (REPO_ROOT / "data" / "motions").glob("*.npz")
    )
    if not clips:
        raise SystemExit("no clip in data/motions: run data_process/generate_sample_motions.py or pass --motion")
    return clips[0]


def write_mjlab_npz(clip: Path, out: Path) -> None:
    """mjlab's loader wants every robot body in XML order at 50 Hz: build it with our library."""
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import get_spec

    from gear_sonic.utils.motion_lib import MotionLib

    model = get_spec().compile()
    bodies = [model.body(i).name for i in range(1, model.nbody)]
    lib = MotionLib(clip, mj_model=model, body_names=bodies, target_fps=50.0)
    frames = torch.arange(int(lib.clip_num_frames[0]))
    state = lib.state_at_frames(torch.zeros_like(frames), frames)
    np.savez(
        out,
        fps=np.array([50.0]),
        joint_pos=state.joint_pos.numpy(),
        joint_vel=state.joint_vel.numpy(),
        body_pos_w=state.body_pos_w.numpy(),
        body_quat_w=state.body_quat_w.numpy(),
        body_lin_vel_w=state.body_lin_vel_w.numpy(),
        body_ang_vel_w=state.body_ang_vel_w.numpy(),
    )


class Bench:
    """One env under test: its step function and a fixed stream of random actions."""

    def __init__(self, name: str, env, step_fn, device: str, seed: int):
        self.name, self.env, self.step_fn, self.device = name, env, step_fn, device
        self.num_envs = env.num_envs
        self.num_actions = env.action_manager.total_action_dim
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def run(self, steps: int) -> float:
        """Step `steps` times; -> env-steps/s."""
        sync = torch.cuda.synchronize if self.device.startswith("cuda") else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            actions = torch.randn(self.num_envs, self.num_actions, device=self.device, generator=self.generator)
            self.step_fn(actions)
        sync()
        return self.num_envs * steps / (time.perf_counter() - start)


def build_ours(clip: Path, num_envs: int, device: str, seed: int, backend: str = "warp") -> Bench:
    from hydra import compose, initialize_config_dir

    from gear_sonic.envs import create_manager_env

    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose(
            "base",
            overrides=[
                "+exp=manager/universal_token/all_modes/sonic_release",
                f"manager_env.commands.motion.motion_file={clip}",
                f"seed={seed}",
                f"manager_env.config.sim.backend={backend}",
            ],
        )
    wrapper = create_manager_env(cfg, device=device, num_envs=num_envs)
    return Bench(f"gear_sonic sonic_release ({backend})", wrapper.env, wrapper.step, device, seed)


def build_ours_go1(num_envs: int, device: str, seed: int) -> Bench:
    from hydra import compose, initialize_config_dir

    from gear_sonic.envs import create_manager_env

    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose("base", overrides=["+exp=manager/locomotion/go1_velocity", f"seed={seed}"])
    wrapper = create_manager_env(cfg, device=device, num_envs=num_envs)
    return Bench("gear_sonic go1_velocity (warp)", wrapper.env, wrapper.step, device, seed)


def build_mjlab_go1(num_envs: int, device: str, seed: int) -> Bench:
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.velocity.config.go1.env_cfgs import unitree_go1_flat_env_cfg

    cfg = unitree_go1_flat_env_cfg()
    cfg.scene.num_envs = num_envs
    cfg.seed = seed
    env = ManagerBasedRlEnv(cfg, device=device)
    env.reset()
    return Bench("mjlab Velocity-Flat-Go1", env, env.step, device, seed)


def build_mjlab(npz: Path, num_envs: int, device: str, seed: int) -> Bench:
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.tracking.config.g1.env_cfgs import unitree_g1_flat_tracking_env_cfg

    cfg = unitree_g1_flat_tracking_env_cfg()
    cfg.commands["motion"].motion_file = str(npz)
    cfg.scene.num_envs = num_envs
    cfg.seed = seed
    env = ManagerBasedRlEnv(cfg, device=device)
    env.reset()
    return Bench("mjlab Tracking-Flat-G1", env, env.step, device, seed)


# ---------------------------------------------------------------- profiling
PROFILED = {
    "physics (sim.step)": ("sim", "step"),
    "forward (sim.forward)": ("sim", "forward"),
    "actions": ("action_manager", "process_action"),
    "command": ("command_manager", "compute"),
    "observations": ("observation_manager", "compute"),
    "rewards": ("reward_manager", "compute"),
    "terminations": ("termination_manager", "compute"),
    "metrics": ("metrics_manager", "compute"),
    "events": ("event_manager", "apply"),
    "resets (_reset_idx)": (None, "_reset_idx"),
}


def profile(bench: Bench, steps: int) -> dict[str, float]:
    """ms per env step in physics and in each manager (timers wrapped around their methods)."""
    totals: dict[str, float] = defaultdict(float)
    originals = []
    sync = torch.cuda.synchronize if bench.device.startswith("cuda") else (lambda: None)

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            totals[label] += time.perf_counter() - start
            return out

        return wrapper

    for label, (owner_name, method) in PROFILED.items():
        owner = bench.env if owner_name is None else getattr(bench.env, owner_name)
        originals.append((owner, method, owner.__dict__.get(method)))
        setattr(owner, method, timed(label, getattr(owner, method)))
    start = time.perf_counter()
    try:
        bench.run(steps)
    finally:
        for owner, method, original in originals:
            if original is None:
                delattr(owner, method)
            else:
                setattr(owner, method, original)
    totals["total step"] = time.perf_counter() - start
    return {label: 1000.0 * seconds / steps for label, seconds in totals.items()}


def print_profile(benches: list[Bench], steps: int) -> None:
    rows = [profile(bench, steps) for bench in benches]
    labels = [*PROFILED, "total step"]
    print(f"ms per env step ({steps} steps; nested timers: resets include a forward)")
    print(f"{'':24s}" + "".join(f"{b.name:>26s}" for b in benches))
    for label in labels:
        print(f"{label:24s}" + "".join(f"{row.get(label, 0.0):26.2f}" for row in rows))


# ---------------------------------------------------------------- main
def main() -> None:
    args = parse_args()
    logging.basicConfig(format="%(message)s")
    logging.getLogger("gear_sonic").setLevel(logging.INFO)  # env build and motion loading progress
    from gear_sonic.envs.manager_env.builder import resolve_device
    from gear_sonic.sim.backend import resolve_backend

    device = resolve_device(args.device)
    args.backend = resolve_backend(args.backend, device)
    steps = args.steps or (100 if args.num_envs < 64 else 40)
    if args.task == "go1_velocity":
        args.backend = "warp"  # ray-cast foot-height sensor: MJWarp only
        mjlab = build_mjlab_go1(args.num_envs, device, args.seed)
        ours = build_ours_go1(args.num_envs, device, args.seed)
        what = "task go1_velocity"
    else:
        clip = Path(args.motion) if args.motion else default_clip()
        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "mjlab_clip.npz"
            write_mjlab_npz(clip, npz)
            mjlab = build_mjlab(npz, args.num_envs, device, args.seed)
            ours = build_ours(clip, args.num_envs, device, args.seed, args.backend)
        what = f"clip {clip.name}"
    for bench in (ours, mjlab):
        bench.run(args.warmup)
    if args.profile:
        print_profile([ours, mjlab], steps)
    print(f"{what}, device {device}, num_envs {args.num_envs}, "
          f"{steps} timed steps per block, our backend {args.backend}")
    ratios = []
    for pair in range(1, args.pairs + 1):
        ours_rate = ours.run(steps)
        mjlab_rate = mjlab.run(steps)
        ratios.append(ours_rate / mjlab_rate)
        print(f"pair {pair}: ours {ours_rate:8.1f}  mjlab {mjlab_rate:8.1f} env-steps/s  ratio {ratios[-1]:.2f}")
    for bench in (ours, mjlab):
        bench.env.close()
    label = "native/mjlab-warp" if args.backend == "native" else "ours/mjlab"
    print(
        f"ratio {label}: {statistics.median(ratios):.2f} "
        f"(spread {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} pairs)"
    )


if __name__ == "__main__":
    main()
