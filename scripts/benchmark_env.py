"""Env-steps/s of our tracking env against mjlab's own `Mjlab-Tracking-Flat-Unitree-G1`.

Both envs track the same clip on the same device with the same random actions (so both see
falls and resets); ours computes the larger SONIC observation set (actor 930, critic 1645,
tokenizer dict) and the SONIC rewards. The last line is `ratio ours/mjlab: X.XX`.

    python scripts/benchmark_env.py --num-envs 64 [--device cpu] [--motion data/motions/<clip>.npz]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--device", default="auto", help="cpu, cuda:0 or auto")
    parser.add_argument("--motion", default=None, help="clip file (default: the first sample walking clip)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 100 below 64 envs, else 40)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


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


def time_steps(step_fn, num_envs: int, num_actions: int, device: str, warmup: int, steps: int) -> float:
    generator = torch.Generator(device=device).manual_seed(0)

    def actions():
        return torch.randn(num_envs, num_actions, device=device, generator=generator)

    for _ in range(warmup):
        step_fn(actions())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step_fn(actions())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return num_envs * steps / (time.perf_counter() - start)


def bench_ours(clip: Path, num_envs: int, device: str, args) -> float:
    from hydra import compose, initialize_config_dir

    from gear_sonic.envs import create_manager_env

    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose(
            "base",
            overrides=[
                "+exp=manager/universal_token/all_modes/sonic_release",
                f"manager_env.commands.motion.motion_file={clip}",
                f"seed={args.seed}",
            ],
        )
    env = create_manager_env(cfg, device=device, num_envs=num_envs)
    rate = time_steps(env.step, num_envs, env.num_actions, device, args.warmup, args.steps)
    env.close()
    return rate


def bench_mjlab(npz: Path, num_envs: int, device: str, args) -> float:
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.tracking.config.g1.env_cfgs import unitree_g1_flat_tracking_env_cfg

    cfg = unitree_g1_flat_tracking_env_cfg()
    cfg.commands["motion"].motion_file = str(npz)
    cfg.scene.num_envs = num_envs
    cfg.seed = args.seed
    env = ManagerBasedRlEnv(cfg, device=device)
    env.reset()
    num_actions = env.action_manager.total_action_dim
    rate = time_steps(env.step, num_envs, num_actions, device, args.warmup, args.steps)
    env.close()
    return rate


def main() -> None:
    args = parse_args()
    from gear_sonic.envs.manager_env.builder import resolve_device

    device = resolve_device(args.device)
    args.steps = args.steps or (100 if args.num_envs < 64 else 40)
    clip = Path(args.motion) if args.motion else default_clip()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "mjlab_clip.npz"
        write_mjlab_npz(clip, npz)
        mjlab_rate = bench_mjlab(npz, args.num_envs, device, args)
        ours_rate = bench_ours(clip, args.num_envs, device, args)
    print(f"clip {clip.name}, device {device}, num_envs {args.num_envs}, {args.steps} timed steps")
    print(f"mjlab Mjlab-Tracking-Flat-Unitree-G1: {mjlab_rate:9.1f} env-steps/s")
    print(f"gear_sonic sonic_release env:         {ours_rate:9.1f} env-steps/s")
    print(f"ratio ours/mjlab: {ours_rate / mjlab_rate:.2f}")


if __name__ == "__main__":
    main()
