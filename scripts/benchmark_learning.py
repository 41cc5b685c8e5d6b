"""Our PPO against Stable-Baselines3's PPO on a gymnasium MuJoCo task: same budget, same seeds.

Both learners get the settings of config/exp/gym/ppo.yaml (SB3's PPO defaults: rollout, epochs,
mini-batch share, learning rate, clipping, loss weights, 64-64 tanh networks), the same number
of envs and env steps, and each seed once. Each trained policy is then scored by the same
evaluator (gear_sonic/eval/episodes.py: deterministic actions, `--eval-episodes` episodes).

    python scripts/benchmark_learning.py [--env InvertedPendulum-v5] [--steps 40960]
        [--seeds 0 1] [--num-envs 16] [--rollout 128] [--eval-episodes 10] [--threads 1]

Prints one line per seed, the final returns (mean over seeds) of both, and last
`ratio ours/sb3: X.XX` (final return of ours over SB3's).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def compose_gym_ppo(env_id: str, seed: int, num_envs: int, rollout: int, iterations: int, base_dir):
    from hydra import compose, initialize_config_dir

    mini_batches = min(16, num_envs)
    overrides = [
        "+exp=gym/ppo",
        f"gym.env_id={env_id}",
        f"seed={seed}",
        f"num_envs={num_envs}",
        f"algo.config.num_steps_per_env={rollout}",
        f"algo.config.num_mini_batches={mini_batches}",
        f"algo.config.num_learning_iterations={iterations}",
        f"base_dir={base_dir}",
        f"experiment_name=ours_seed{seed}",
    ]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        return compose("base", overrides=overrides)


def train_ours(cfg) -> Path:
    from gear_sonic.train_agent_trl import run_training

    return Path(run_training(cfg))


def evaluate_ours(exp_dir: Path, episodes: int, num_envs: int, seed: int) -> float:
    from gear_sonic.eval.episodes import run_episodes
    from gear_sonic.gym_interop.policies import load_policy_and_env

    envs, policy = load_policy_and_env(exp_dir, num_envs=num_envs, seed=seed)
    try:
        return run_episodes(envs, policy, episodes, deterministic=True, seed=seed).mean_return
    finally:
        envs.close()


def train_sb3(cfg, env_id: str, seed: int, total_steps: int):
    """SB3 PPO with the composed gym/ppo settings translated to its arguments."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    algo, nets = cfg.algo.config, cfg.actor_critic
    num_envs = int(cfg.num_envs)
    rollout = int(algo.num_steps_per_env)
    model = PPO(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=num_envs, seed=seed),
        n_steps=rollout,
        batch_size=num_envs * rollout // int(algo.num_mini_batches),
        n_epochs=int(algo.num_learning_epochs),
        learning_rate=float(algo.actor_learning_rate),
        gamma=float(algo.gamma),
        gae_lambda=float(algo.lam),
        clip_range=float(algo.clip_param),
        ent_coef=float(algo.entropy_coef),
        vf_coef=float(algo.value_loss_coef),
        max_grad_norm=float(algo.max_grad_norm),
        normalize_advantage=bool(algo.normalize_advantages),
        policy_kwargs={
            "net_arch": {
                "pi": list(nets.actor.backbone.hidden_dims),
                "vf": list(nets.critic.hidden_dims),
            },
            "activation_fn": torch.nn.Tanh,
            "log_std_init": math.log(float(nets.actor.init_std)),
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_steps)
    return model


def evaluate_sb3(model, env_id: str, episodes: int, num_envs: int, seed: int) -> float:
    from gear_sonic.eval.episodes import run_episodes
    from gear_sonic.gym_interop.policies import make_same_step_vector_env

    envs = make_same_step_vector_env(env_id, num_envs)

    def policy(obs, deterministic):
        return model.predict(obs, deterministic=deterministic)[0]

    try:
        return run_episodes(envs, policy, episodes, deterministic=True, seed=seed).mean_return
    finally:
        envs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="InvertedPendulum-v5")
    parser.add_argument("--steps", type=int, default=40960, help="env steps per learner and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--rollout", type=int, default=128, help="steps per env per update")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for both (small MLPs: 1 is fastest)"
    )
    args = parser.parse_args(argv)

    from gear_sonic.sb3.train import torch_threads

    with torch_threads(args.threads):
        run_benchmark(args)
    return 0


def run_benchmark(args) -> None:

    per_iteration = args.num_envs * args.rollout
    iterations = max(1, args.steps // per_iteration)
    steps = iterations * per_iteration  # both learners stop at whole rollouts
    print(
        f"{args.env}: {steps} env steps per learner and seed ({iterations} rollouts of "
        f"{args.num_envs} envs x {args.rollout}), seeds {args.seeds}, "
        f"{args.eval_episodes} deterministic eval episodes"
    )
    ours, sb3 = [], []
    with tempfile.TemporaryDirectory(prefix="benchmark_learning_") as base_dir:
        for seed in args.seeds:
            cfg = compose_gym_ppo(args.env, seed, args.num_envs, args.rollout, iterations, base_dir)
            start = time.perf_counter()
            exp_dir = train_ours(cfg)
            ours_s = time.perf_counter() - start
            ours.append(evaluate_ours(exp_dir, args.eval_episodes, args.num_envs, seed))
            start = time.perf_counter()
            model = train_sb3(cfg, args.env, seed, steps)
            sb3_s = time.perf_counter() - start
            sb3.append(evaluate_sb3(model, args.env, args.eval_episodes, args.num_envs, seed))
            print(
                f"seed {seed}: ours {ours[-1]:.1f} ({ours_s:.0f} s), "
                f"sb3 {sb3[-1]:.1f} ({sb3_s:.0f} s)",
                flush=True,
            )
    ours_mean, sb3_mean = statistics.fmean(ours), statistics.fmean(sb3)
    print(
        f"final return (mean over {len(args.seeds)} seeds): ours {ours_mean:.1f}, sb3 {sb3_mean:.1f}"
    )
    ratio = ours_mean / sb3_mean if sb3_mean != 0 else float("nan")
    print(f"ratio ours/sb3: {ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
