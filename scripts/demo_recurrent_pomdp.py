"""Recurrent vs feed-forward PPO on a partially observable task, on CPU.

mjlab's cartpole balance task with the velocities hidden from the actor: it sees the cart
position and the pole angle (cos, sin) only, so it must infer the velocities from the history.
Episodes also end when the pole tilts past 0.6 rad, so the return grows with balancing time.
The critic sees the full state in both runs. Both policies train with the same PPO settings;
the script prints the mean episode return of the last iterations of each and plots both curves.

    python scripts/demo_recurrent_pomdp.py [--iterations 40] [--num-envs 64] \
        [--png docs/recurrent_pomdp.png]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
from gear_sonic.trl.modules.mlp_backbone import mlp_backbone
from gear_sonic.trl.modules.recurrent_modules import (
    RecurrentBackbone,
    RecurrentCritic,
)
from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer

VISIBLE_TERMS = ("cart_pos", "pole_angle")  # cart_vel and pole_vel are hidden from the actor


def pole_fell(env, fall_angle: float) -> torch.Tensor:
    hinge = env.scene["cartpole"].data.joint_pos[:, 1]  # joints: slider, hinge_1
    return hinge.abs() > fall_angle


def make_env(num_envs: int, seed: int, episode_s: float, fall_angle: float = 0.6):
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.managers.observation_manager import ObservationGroupCfg
    from mjlab.managers.termination_manager import TerminationTermCfg
    from mjlab.tasks.cartpole.cartpole_env_cfg import cartpole_balance_env_cfg

    from gear_sonic.envs.wrapper import ManagerEnvWrapper
    from gear_sonic.sim import simulation_backend

    cfg = cartpole_balance_env_cfg()
    cfg.scene.num_envs, cfg.seed, cfg.episode_length_s = num_envs, seed, episode_s
    # An episode also ends when the pole tilts past `fall_angle`: the return then measures how
    # long the policy keeps it up, and episodes end at different times.
    cfg.terminations["pole_fell"] = TerminationTermCfg(
        func=pole_fell, params={"fall_angle": fall_angle}
    )
    terms = cfg.observations["critic"].terms
    cfg.observations = {
        "actor_obs": ObservationGroupCfg({k: terms[k] for k in VISIBLE_TERMS}),
        "critic_obs": ObservationGroupCfg(dict(terms)),
    }
    with simulation_backend("native", "cpu", None):
        env = ManagerBasedRlEnv(cfg, device="cpu")
    return ManagerEnvWrapper(env)


def make_policy(kind: str, shapes: dict, num_actions: int):
    if kind == "mlp":
        backbone = mlp_backbone(shapes, num_actions, ["actor_obs"], [64, 64], "elu")
        critic = Critic(shapes, "critic_obs", [64, 64], "elu")
    else:
        backbone = RecurrentBackbone(shapes, num_actions, rnn_type=kind, rnn_hidden=64,
                                     hidden_dims=[64])
        critic = RecurrentCritic(shapes, rnn_type=kind, rnn_hidden=64, hidden_dims=[64])
    return Actor(backbone, num_actions, init_std=1.0, std_min=0.05, std_max=2.0), critic


def train(kind: str, args) -> list[float]:
    torch.manual_seed(args.seed)
    env = make_env(args.num_envs, args.seed, args.episode_s)
    actor, critic = make_policy(kind, env.observation_shapes, env.num_actions)
    cfg = PPOConfig(
        num_steps_per_env=32, num_learning_epochs=5, num_mini_batches=4,
        sequence_length=16 if kind != "mlp" else 0, gamma=0.99, lam=0.95,
        actor_learning_rate=1e-3, critic_learning_rate=1e-3, schedule="fixed",
        entropy_coef=0.005, max_grad_norm=1.0, num_learning_iterations=args.iterations,
    )
    trainer = TRLPPOTrainer(env, actor, critic, cfg, Accelerator(cpu=True))
    returns = []
    start = time.perf_counter()
    for _ in range(args.iterations):
        returns.append(trainer.run_iteration()["mean_reward"])
    env.close()
    print(f"{kind}: {args.iterations} iterations in {time.perf_counter() - start:.0f} s")
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--episode-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="gru,mlp", help="comma-separated: gru, lstm, mlp")
    parser.add_argument("--png", default=str(REPO_ROOT / "docs" / "recurrent_pomdp.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny networks: extra threads only add overhead

    curves = {kind: train(kind, args) for kind in args.kinds.split(",")}
    last = max(1, args.iterations // 10)
    for kind, values in curves.items():
        tail = [v for v in values[-last:] if math.isfinite(v)]
        mean = sum(tail) / max(len(tail), 1)
        print(f"{kind}: mean episode return of the last {last} iterations = {mean:.2f}")
    png = Path(args.png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with png.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", *curves])
        writer.writerows([i + 1, *row] for i, row in enumerate(zip(*curves.values())))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: curves written to {png.with_suffix('.csv')} only")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=kind.upper())
    ax.set_xlabel("PPO iteration")
    ax.set_ylabel("mean episode return")
    ax.set_title("Cartpole balance, velocities hidden from the actor")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png} and {png.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
