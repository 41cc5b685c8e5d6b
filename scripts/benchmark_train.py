"""End-to-end training env-steps/s (rollout + PPO update) of our trainer.

Default: against mjlab's rsl_rl runner, both on mjlab's own `Mjlab-Tracking-Flat-Unitree-G1` task
with the same clip, num_envs, MLP sizes ([512, 256, 128], ELU), 24 steps per env, 5 epochs x 4
mini-batches. Both runners are built once and warmed up, then timed in interleaved blocks
(ours/rsl_rl/ours/rsl_rl...) so a noisy machine slows both sides of a pair alike. Last line:
`ratio ours/rsl_rl: X.XX (spread A.AA-B.BB over N pairs)`, the median of the per-pair ratios.

    python scripts/benchmark_train.py --num-envs 64 [--pairs 3] [--iterations 2] [--profile]

`--nproc 2`: our trainer with 2 processes (torchrun, gloo on CPU) against 1 process, each with
--num-envs envs per process, interleaved runs; last line `ratio 2proc/1proc: X.XX (...)`.
`--profile` prints where one iteration of ours spends its time (cProfile, top functions).
`--backend auto` (default): our trainer's env runs on the backend a training run gets by default:
the native MuJoCo C backend (gear_sonic.sim) on CPU, MJWarp on CUDA. rsl_rl's always runs on MJWarp,
so on CPU the last line reads `ratio native/mjlab-warp: X.XX (...)`. `--backend warp` compares the
two trainers on one engine (last line `ratio ours/rsl_rl`); there the env step is ~93 % of an
iteration and the learner time per iteration printed above is what the trainers themselves cost.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmark_env import default_clip, write_mjlab_npz  # same folder

HIDDEN = [512, 256, 128]
STEPS_PER_ENV = 24


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-envs", type=int, default=64, help="envs per process")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per block")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved timing pairs (>= 1)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--motion", default=None)
    parser.add_argument("--nproc", type=int, default=1, help="2: compare 2 processes against 1")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "native", "warp"),
        help="backend of our trainer's env: auto = native on CPU, warp on CUDA, as in training "
        "(rsl_rl's always runs on warp)",
    )
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)  # --nproc child mode
    args = parser.parse_args()
    if args.pairs < 1 or args.iterations < 1:
        parser.error("--pairs and --iterations must be >= 1")
    return args


def mjlab_tracking_env(npz: Path, num_envs: int, device: str, seed: int = 0, backend: str = "warp"):
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.tasks.tracking.config.g1.env_cfgs import unitree_g1_flat_tracking_env_cfg

    from gear_sonic.sim import simulation_backend

    cfg = unitree_g1_flat_tracking_env_cfg()
    cfg.commands["motion"].motion_file = str(npz)
    cfg.scene.num_envs = num_envs
    cfg.seed = seed
    with simulation_backend(backend, device):
        return ManagerBasedRlEnv(cfg, device=device)


def rsl_rl_runner(npz: Path, num_envs: int, device: str):
    """-> train(iterations) for rsl_rl's OnPolicyRunner on mjlab's tracking env."""
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.tasks.tracking.config.g1.rl_cfg import unitree_g1_tracking_ppo_runner_cfg
    from mjlab.tasks.tracking.rl.runner import MotionTrackingOnPolicyRunner

    env = RslRlVecEnvWrapper(mjlab_tracking_env(npz, num_envs, device))
    cfg = unitree_g1_tracking_ppo_runner_cfg()
    cfg.logger = "tensorboard"
    runner = MotionTrackingOnPolicyRunner(env, dataclasses.asdict(cfg), log_dir=None, device=device)
    return lambda iterations: runner.learn(num_learning_iterations=iterations), env.unwrapped


def our_trainer(npz: Path, num_envs: int, device: str, accelerator=None, backend: str = "warp"):
    """Our TRLPPOTrainer with the same MLPs and PPO layout on mjlab's tracking env."""
    from accelerate import Accelerator

    from gear_sonic.envs.wrapper import ManagerEnvWrapper
    from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
    from gear_sonic.trl.modules.base_module import BaseModule
    from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer

    accelerator = accelerator or Accelerator(cpu=device == "cpu")
    seed = accelerator.process_index
    env = ManagerEnvWrapper(mjlab_tracking_env(npz, num_envs, device, seed, backend))
    shapes = env.observation_shapes
    backbone = BaseModule(["actor"], shapes, env.num_actions, hidden_dims=HIDDEN, activation="elu")
    # rsl_rl's tracking runner starts at std 1.0: the same action noise gives both envs the same
    # falls and resets, i.e. the same physics workload, which dominates the step.
    actor = Actor(backbone, env.num_actions, init_std=1.0, std_min=0.001, std_max=2.0)
    critic = Critic(shapes, input_group="critic", hidden_dims=HIDDEN, activation="elu")
    ppo = PPOConfig(
        num_steps_per_env=STEPS_PER_ENV,
        num_learning_epochs=5,
        num_mini_batches=4,
        actor_learning_rate=1e-3,
        lr_max=1e-2,
        max_grad_norm=1.0,
        entropy_coef=0.005,
    )
    trainer = TRLPPOTrainer(env, actor, critic, ppo, accelerator)
    return trainer


class EnvClock:
    """Seconds spent inside an mjlab env's step, so a block splits into env and learner time."""

    def __init__(self, env):
        self.seconds = 0.0
        step = env.step

        def timed_step(*args, **kwargs):
            start = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        env.step = timed_step


def timed_split(train, iterations: int, num_envs: int, clock: EnvClock) -> tuple[float, float]:
    """-> (env-steps/s, learner seconds per iteration: everything outside env.step)."""
    clock.seconds = 0.0
    start = time.perf_counter()
    train(iterations)
    elapsed = time.perf_counter() - start
    return num_envs * STEPS_PER_ENV * iterations / elapsed, (elapsed - clock.seconds) / iterations


def ratio_line(label: str, ratios: list[float]) -> str:
    return (
        f"ratio {label}: {statistics.median(ratios):.2f} "
        f"(spread {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} pairs)"
    )


def compare_with_rsl_rl(npz: Path, args, device: str) -> None:
    trainer = our_trainer(npz, args.num_envs, device, backend=args.backend)
    rsl_train, rsl_env = rsl_rl_runner(npz, args.num_envs, device)
    trainer.train(1), rsl_train(1)  # warm-up: first resets, allocator, caches
    # The env step dominates and its cost follows each side's random falls; the learner time
    # (rollout bookkeeping, policy, GAE, update) is what the trainers themselves cost.
    our_clock, rsl_clock = EnvClock(trainer.env.env), EnvClock(rsl_env)
    ratios, learner = [], {"ours": [], "rsl_rl": []}
    for pair in range(args.pairs):
        ours, ours_learn = timed_split(trainer.train, args.iterations, args.num_envs, our_clock)
        rsl, rsl_learn = timed_split(rsl_train, args.iterations, args.num_envs, rsl_clock)
        ratios.append(ours / rsl)
        learner["ours"].append(ours_learn)
        learner["rsl_rl"].append(rsl_learn)
        print(
            f"pair {pair + 1}: ours {ours:7.1f}  rsl_rl {rsl:7.1f} env-steps/s  ratio {ours / rsl:.2f}"
            f"  | learner s/iteration: ours {ours_learn:.2f}  rsl_rl {rsl_learn:.2f}",
            flush=True,
        )
    if args.profile:
        profile_iteration(trainer)
    print(
        f"task Mjlab-Tracking-Flat-Unitree-G1, device {device}, num_envs {args.num_envs}, "
        f"{args.iterations} iterations of {STEPS_PER_ENV} steps per block, "
        f"our backend {args.backend}"
    )
    print(
        "learner time per iteration (outside env.step), median: "
        f"ours {statistics.median(learner['ours']):.2f} s, "
        f"rsl_rl {statistics.median(learner['rsl_rl']):.2f} s"
    )
    print(ratio_line("native/mjlab-warp" if args.backend == "native" else "ours/rsl_rl", ratios))


def profile_iteration(trainer) -> None:
    """Where one iteration goes: rollout (env, policy, storage) vs update, top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.train(1)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())


# ------------------------------------------------------------------ --nproc: 2 ranks vs 1
def worker(npz: Path, args, device: str) -> None:
    """One torchrun rank: warm up, then time the iterations between two barriers."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=device == "cpu")
    trainer = our_trainer(npz, args.num_envs, "cpu" if device == "cpu" else device, accelerator)
    trainer.train(1)
    accelerator.wait_for_everyone()
    start = time.perf_counter()
    trainer.train(args.iterations)
    accelerator.wait_for_everyone()
    elapsed = time.perf_counter() - start
    steps = args.num_envs * STEPS_PER_ENV * args.iterations * accelerator.num_processes
    if accelerator.is_main_process:
        Path(args.worker_out).write_text(f"{steps / elapsed}\n")


def run_ranks(nproc: int, npz: Path, args) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            __file__,
            "--num-envs",
            str(args.num_envs),
            "--iterations",
            str(args.iterations),
            "--device",
            args.device,
            "--motion",
            str(npz),
            "--worker-out",
            out.name,
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise SystemExit(f"{nproc}-process run failed:\n{result.stderr[-3000:]}")
        return float(Path(out.name).read_text())


def compare_processes(npz: Path, args) -> None:
    ratios = []
    for pair in range(args.pairs):
        one = run_ranks(1, npz, args)
        two = run_ranks(args.nproc, npz, args)
        ratios.append(two / one)
        print(
            f"pair {pair + 1}: 1 process {one:8.1f}  {args.nproc} processes {two:8.1f} env-steps/s  "
            f"ratio {two / one:.2f}",
            flush=True,
        )
    print(
        f"our trainer on Mjlab-Tracking-Flat-Unitree-G1, {args.num_envs} envs per process, "
        f"{args.iterations} timed iterations per run"
    )
    print(ratio_line(f"{args.nproc}proc/1proc", ratios))


def main() -> None:
    args = parse_args()
    from gear_sonic.sim.backend import resolve_backend
    from gear_sonic.trl.distributed import requested_device

    device = requested_device(args.device)
    device = "cuda:0" if device == "cuda" else device
    args.backend = resolve_backend(args.backend, device)
    if args.worker_out:
        worker(Path(args.motion), args, device)
        return
    clip = Path(args.motion) if args.motion else default_clip()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "clip.npz"
        write_mjlab_npz(clip, npz)
        if args.nproc > 1:
            compare_processes(npz, args)
        else:
            compare_with_rsl_rl(npz, args, device)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
