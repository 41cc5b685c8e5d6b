"""Learning curves of our trainer and rsl_rl on mjlab's flat Go1 velocity task at equal env-steps.

rsl_rl (rsl-rl-lib) trains mjlab's own `Mjlab-Velocity-Flat-Unitree-Go1` env through mjlab's
`RslRlVecEnvWrapper` and runner with mjlab's Go1 PPO config (rl_cfg.py); our `TRLPPOTrainer` trains
`+exp=manager/locomotion/go1_velocity` (the same task in our YAML, term for term). Both get the same
env-step budget, num_envs, seed, 24 steps per env, 5 epochs x 4 mini-batches, adaptive learning
rate (1e-3, KL 0.01), 512-256-128 ELU networks with std 1, and random initial episode lengths
(mjlab's train script passes init_at_random_ep_len=True).

Both run on our native MuJoCo C backend (`gear_sonic.sim.simulation_backend`), which has no
ray-cast sensor, so on BOTH sides the foot-height scan is dropped with what reads it: the critic's
`foot_height` observation and the `foot_clearance` (-2.0) and `foot_swing_height` (-0.25) rewards.
Everything else is mjlab's task. Both normalise actor and critic inputs with running statistics.

The curve is the mean return of the episodes that ended in each iteration (carried over when none
did), measured the same way on both sides. Writes a CSV (env_steps, trainer, iteration,
mean_episode_reward, mean_episode_length) and a PNG, prints the final values (mean of the last
10 iterations) and, last, `ratio ours/rsl_rl: X.XX`.

    python scripts/go1_learning_curves.py [--env-steps 200000] [--num-envs 64] [--seed 0]
    python scripts/go1_learning_curves.py --quick --out-dir /tmp/curves    # smoke test
    python scripts/go1_learning_curves.py --replot docs/go1_learning_curves.csv  # PNG + finals again
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
STEPS_PER_ENV = 24  # mjlab's Go1 runner and our go1_velocity preset
DROPPED_REWARDS = ("foot_clearance", "foot_swing_height")
HEIGHT_SCAN = "foot_height_scan"
KEPT_SENSORS = ("feet_ground_contact",)
FINAL_WINDOW = 10  # iterations averaged for the final value (one iteration's episodes are few)
SMOOTH = 10  # the plot's running mean, in iterations


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-steps", type=int, default=200_000, help="budget per trainer")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sim-threads", type=int, default=1, help="native backend threads")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads for both learners (small MLPs on CPU lose to thread sync)",
    )
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs", help="CSV and PNG go here")
    parser.add_argument(
        "--replot", type=Path, default=None, help="redraw the PNG and reprint finals from a CSV"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 4 envs, 2 iterations per trainer"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.num_envs, args.env_steps = 4, 2 * 4 * STEPS_PER_ENV
    if args.num_envs < 4 or args.num_envs % 4:
        parser.error(f"--num-envs {args.num_envs}: use a multiple of 4 (4 mini-batches)")
    if args.env_steps < args.num_envs * STEPS_PER_ENV:
        parser.error(f"--env-steps {args.env_steps}: less than one iteration")
    return args


# --------------------------------------------------------------------------- rsl_rl side
def mjlab_go1_env_cfg(num_envs: int, seed: int):
    """mjlab's flat Go1 task without the foot-height scan and the terms that read it."""
    from mjlab.tasks.velocity.config.go1.env_cfgs import unitree_go1_flat_env_cfg

    cfg = unitree_go1_flat_env_cfg()
    cfg.scene.sensors = tuple(s for s in cfg.scene.sensors or () if s.name != HEIGHT_SCAN)
    for name in DROPPED_REWARDS:
        del cfg.rewards[name]
    del cfg.observations["critic"].terms["foot_height"]
    left = [s.name for s in cfg.scene.sensors]
    assert left == list(KEPT_SENSORS), f"mjlab's Go1 task changed its sensors: {left}"
    cfg.scene.num_envs, cfg.seed = num_envs, seed
    return cfg


def train_rsl_rl(args, iterations: int) -> list[dict]:
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.rl.runner import MjlabOnPolicyRunner
    from mjlab.tasks.velocity.config.go1.rl_cfg import unitree_go1_ppo_runner_cfg

    from gear_sonic.sim import simulation_backend

    torch.manual_seed(args.seed)
    with simulation_backend("native", "cpu", num_threads=args.sim_threads):
        env = ManagerBasedRlEnv(mjlab_go1_env_cfg(args.num_envs, args.seed), device="cpu")
    agent = unitree_go1_ppo_runner_cfg()
    agent.seed = args.seed
    wrapped = RslRlVecEnvWrapper(env, clip_actions=agent.clip_actions)
    runner = MjlabOnPolicyRunner(wrapped, dataclasses.asdict(agent), None, "cpu")
    rows = record_rsl_rl_episodes(runner, args.num_envs)
    runner.learn(num_learning_iterations=iterations, init_at_random_ep_len=True)
    env.close()
    return rows


def record_rsl_rl_episodes(runner, num_envs: int) -> list[dict]:
    """Hook rsl_rl's logger: per iteration, the mean return/length of the episodes that ended
    in it (our trainer's definition), so both curves measure the same thing."""
    logger, rows = runner.logger, []
    ret, length = torch.zeros(num_envs), torch.zeros(num_envs)
    ended = {"count": 0, "return": 0.0, "length": 0.0}
    last = {"return": math.nan, "length": math.nan}
    process_env_step, log = logger.process_env_step, logger.log

    def on_step(rewards, dones, *rest, **kw):
        ret.add_(rewards.detach().cpu().reshape(-1))
        length.add_(1)
        done = dones.detach().cpu().reshape(-1) > 0
        if done.any():
            ended["count"] += int(done.sum())
            ended["return"] += float(ret[done].sum())
            ended["length"] += float(length[done].sum())
            ret[done], length[done] = 0.0, 0.0
        return process_env_step(rewards, dones, *rest, **kw)

    def on_log(*a, **kw):
        if ended["count"]:
            last["return"] = ended["return"] / ended["count"]
            last["length"] = ended["length"] / ended["count"]
        iteration = len(rows) + 1
        rows.append(curve_row("rsl_rl", iteration, iteration * num_envs * STEPS_PER_ENV, last))
        if iteration % 10 == 0:
            print(f"rsl_rl it {iteration} | reward {last['return']:.3f}", flush=True)
        ended.update(count=0, **{"return": 0.0, "length": 0.0})
        return log(*a, **kw)

    logger.process_env_step, logger.log = on_step, on_log
    return rows


# --------------------------------------------------------------------------- our side
def our_overrides(args, iterations: int, exp_dir: Path) -> list[str]:
    return [
        "+exp=manager/locomotion/go1_velocity",
        f"num_envs={args.num_envs}",
        f"seed={args.seed}",
        "device=cpu",
        f"experiment_dir={exp_dir}",
        f"algo.config.num_learning_iterations={iterations}",
        "++algo.config.random_initial_episode_length=true",  # rsl_rl: init_at_random_ep_len
        "manager_env.config.sim.backend=native",
        f"manager_env.config.sim.num_threads={args.sim_threads}",
        f"++manager_env.config.sensors=[{','.join(KEPT_SENSORS)}]",
        "~manager_env.observations.critic_obs.terms.foot_height",
        *(f"~manager_env.rewards.{name}" for name in DROPPED_REWARDS),
        f"callbacks.model_save.save_interval={iterations}",
        f"callbacks.model_save.last_interval={iterations}",
    ]


def train_ours(args, iterations: int, work_dir: Path) -> list[dict]:
    from hydra import compose, initialize_config_dir

    from gear_sonic.train_agent_trl import run_training

    with initialize_config_dir(config_dir=str(REPO / "config"), version_base="1.3"):
        cfg = compose("base", overrides=our_overrides(args, iterations, work_dir / "ours"))
    torch.manual_seed(args.seed)
    exp_dir = Path(str(run_training(cfg)))
    rows = []
    with (exp_dir / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            values = {
                "return": float(row["mean_reward"]),
                "length": float(row["mean_episode_length"]),
            }
            rows.append(
                curve_row(
                    "ours", int(float(row["iteration"])), int(float(row["total_env_steps"])), values
                )
            )
    return rows


# --------------------------------------------------------------------------- output
def curve_row(trainer: str, iteration: int, env_steps: int, values: dict) -> dict:
    return {
        "trainer": trainer,
        "iteration": iteration,
        "env_steps": env_steps,
        "mean_episode_reward": values["return"],
        "mean_episode_length": values["length"],
    }


def final_value(rows: list[dict]) -> float:
    tail = [r["mean_episode_reward"] for r in rows[-FINAL_WINDOW:]]
    tail = [v for v in tail if not math.isnan(v)]
    return sum(tail) / len(tail) if tail else math.nan


def running_mean(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        seen = [v for v in values[max(0, i - window + 1) : i + 1] if not math.isnan(v)]
        out.append(sum(seen) / len(seen) if seen else math.nan)
    return out


def read_csv(path: Path) -> dict[str, list[dict]]:
    curves: dict[str, list[dict]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            curves.setdefault(row["trainer"], []).append(
                curve_row(
                    row["trainer"],
                    int(row["iteration"]),
                    int(row["env_steps"]),
                    {
                        "return": float(row["mean_episode_reward"]),
                        "length": float(row["mean_episode_length"]),
                    },
                )
            )
    return curves


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for (name, rows), color in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        steps = [r["env_steps"] for r in rows]
        values = [r["mean_episode_reward"] for r in rows]
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(
            steps, running_mean(values, SMOOTH), color=color, label=f"{name} ({SMOOTH}-it mean)"
        )
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean episode reward")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replot is not None:
        curves = read_csv(args.replot)
        num_envs = curves["ours"][0]["env_steps"] // STEPS_PER_ENV
        write_plot(curves, args.replot.with_suffix(".png"), plot_title(num_envs, args.seed))
        report(curves, {})
        return 0
    iterations = math.ceil(args.env_steps / (args.num_envs * STEPS_PER_ENV))
    print(
        f"{iterations} iterations x {args.num_envs} envs x {STEPS_PER_ENV} steps = "
        f"{iterations * args.num_envs * STEPS_PER_ENV} env-steps per trainer, seed {args.seed}, "
        "native backend, no foot-height scan, random initial episode lengths",
        flush=True,
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    curves, seconds = {}, {}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads)
    try:
        with tempfile.TemporaryDirectory(prefix="go1_curves_") as work:
            for name in ("rsl_rl", "ours"):
                start = time.perf_counter()
                if name == "rsl_rl":
                    curves[name] = train_rsl_rl(args, iterations)
                else:
                    curves[name] = train_ours(args, iterations, Path(work))
                seconds[name] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads_before)
    write_csv(curves["rsl_rl"] + curves["ours"], args.out_dir / "go1_learning_curves.csv")
    plot = args.out_dir / "go1_learning_curves.png"
    write_plot(curves, plot, plot_title(args.num_envs, args.seed))
    print(f"wrote {args.out_dir / 'go1_learning_curves.csv'} and {plot.name}")
    report(curves, seconds)
    return 0


def plot_title(num_envs: int, seed: int) -> str:
    return (
        f"mjlab Velocity-Flat-Unitree-Go1: rsl_rl vs ours, {num_envs} envs, seed {seed}\n"
        "native MuJoCo backend; foot-height scan and its terms dropped on both sides"
    )


def report(curves: dict[str, list[dict]], seconds: dict[str, float]) -> None:
    """The final values and, last, the ratio line."""
    finals = {name: final_value(rows) for name, rows in curves.items()}
    for name in ("rsl_rl", "ours"):
        first = curves[name][0]["mean_episode_reward"]
        wall = f", {seconds[name]:.0f} s wall" if name in seconds else ""
        print(
            f"{name}: mean episode reward {first:.3f} (first iteration) -> {finals[name]:.3f} "
            f"(mean of the last {FINAL_WINDOW} iterations){wall}"
        )
    print(f"ratio ours/rsl_rl: {finals['ours'] / finals['rsl_rl']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
