"""End-to-end training env-steps/s (rollout + PPO update) of our trainer against mjlab's rsl_rl
runner, both on mjlab's own `Mjlab-Tracking-Flat-Unitree-G1` task with the same clip, num_envs,
MLP sizes ([512, 256, 128], ELU), 24 steps per env, 5 epochs x 4 mini-batches.

    python scripts/benchmark_train.py --num-envs 64 [--iterations 5] [--device cpu]

Iteration 1 is warm-up and not timed. The last line is `ratio ours/rsl_rl: X.XX`.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from benchmark_env import default_clip, write_mjlab_npz  # same folder

HIDDEN = [512, 256, 128]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations (after 1 warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--motion", default=None)
    return parser.parse_args()


def mjlab_tracking_env(npz: Path, num_envs: int, device: str):
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.tracking.config.g1.env_cfgs import unitree_g1_flat_tracking_env_cfg

    cfg = unitree_g1_flat_tracking_env_cfg()
    cfg.commands["motion"].motion_file = str(npz)
    cfg.scene.num_envs = num_envs
    cfg.seed = 0
    return ManagerBasedRlEnv(cfg, device=device)


def bench_rsl_rl(npz: Path, args, device: str) -> float:
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.tasks.tracking.config.g1.rl_cfg import unitree_g1_tracking_ppo_runner_cfg
    from mjlab.tasks.tracking.rl.runner import MotionTrackingOnPolicyRunner

    env = RslRlVecEnvWrapper(mjlab_tracking_env(npz, args.num_envs, device))
    cfg = unitree_g1_tracking_ppo_runner_cfg()
    cfg.logger = "tensorboard"
    runner_cfg = dataclasses.asdict(cfg)
    with tempfile.TemporaryDirectory() as log_dir:
        runner = MotionTrackingOnPolicyRunner(env, runner_cfg, log_dir=None, device=device)
        runner.learn(num_learning_iterations=1)  # warm-up
        start = time.perf_counter()
        runner.learn(num_learning_iterations=args.iterations)
        elapsed = time.perf_counter() - start
    env.close()
    return args.num_envs * cfg.num_steps_per_env * args.iterations / elapsed


def bench_ours(npz: Path, args, device: str) -> float:
    from accelerate import Accelerator

    from gear_sonic.envs.wrapper import ManagerEnvWrapper
    from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
    from gear_sonic.trl.modules.base_module import BaseModule
    from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer

    env = ManagerEnvWrapper(mjlab_tracking_env(npz, args.num_envs, device))
    shapes = env.observation_shapes
    backbone = BaseModule(["actor"], shapes, env.num_actions, hidden_dims=HIDDEN, activation="elu")
    actor = Actor(backbone, env.num_actions, init_std=0.5, std_min=0.001, std_max=1.0)
    critic = Critic(shapes, input_group="critic", hidden_dims=HIDDEN, activation="elu")
    ppo = PPOConfig(num_steps_per_env=24, num_learning_epochs=5, num_mini_batches=4, actor_learning_rate=1e-3,
                    lr_max=1e-2, max_grad_norm=1.0, entropy_coef=0.005)
    trainer = TRLPPOTrainer(env, actor, critic, ppo, Accelerator(cpu=device == "cpu"))
    trainer.train(1)  # warm-up
    start = time.perf_counter()
    trainer.train(args.iterations)
    elapsed = time.perf_counter() - start
    env.close()
    return args.num_envs * ppo.num_steps_per_env * args.iterations / elapsed


def main() -> None:
    args = parse_args()
    from gear_sonic.envs.manager_env.builder import resolve_device

    device = resolve_device(args.device)
    clip = Path(args.motion) if args.motion else default_clip()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "clip.npz"
        write_mjlab_npz(clip, npz)
        rsl = bench_rsl_rl(npz, args, device)
        ours = bench_ours(npz, args, device)
    print(f"task Mjlab-Tracking-Flat-Unitree-G1, clip {clip.name}, device {device}, num_envs {args.num_envs}, "
          f"{args.iterations} timed iterations of 24 steps")
    print(f"rsl_rl OnPolicyRunner:  {rsl:9.1f} env-steps/s")
    print(f"gear_sonic TRLPPOTrainer: {ours:9.1f} env-steps/s")
    print(f"ratio ours/rsl_rl: {ours / rsl:.2f}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
