"""Stable-Baselines3 learners on our tasks, run by `train_agent_trl.py` when the config has an
`sb3` section (`+exp=sb3/<task>_<algo>`).

The run lives in our experiment dir like a TRL run: config.yaml, meta.yaml, metrics.csv (one row
per iteration), last.pt (atomic, loadable with weights_only: SB3's parameters and optimiser
states, not its pickled zip) and, at the end, `sb3_model.zip` for SB3's own tools. An iteration
is `sb3.steps_per_iteration` env steps of `model.learn`; `+resume=True|auto` continues from
last.pt up to `sb3.iterations` in total. An off-policy learner resumes with an empty replay
buffer (it is not checkpointed).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger
from stable_baselines3.common.vec_env import VecMonitor

from gear_sonic.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gear_sonic.sb3.vec_env import SB3VecEnv

ALGORITHMS = {"ppo": PPO, "sac": SAC, "td3": TD3, "a2c": A2C}
OFF_POLICY = ("sac", "td3")


def algorithm_class(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"sb3.algorithm={name!r}: choose one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]


def build_sb3_env(cfg: DictConfig):
    """The task's batched env: `sb3.env_id` (a gear_sonic gymnasium id) or the composed preset."""
    from gear_sonic.gym_interop.registration import build_vector_env_from_cfg

    env_id = cfg.sb3.get("env_id")
    if not env_id:
        return build_vector_env_from_cfg(cfg, num_envs=int(cfg.num_envs), seed=int(cfg.seed))
    import gymnasium

    from gear_sonic.gym_interop import check_env_id

    check_env_id(env_id)
    kwargs = OmegaConf.to_container(cfg.sb3.env_kwargs, resolve=True)
    return gymnasium.make_vec(
        env_id, num_envs=int(cfg.num_envs), device=str(cfg.device), seed=int(cfg.seed), **kwargs
    )


def build_model(cfg: DictConfig, vec_env):
    sb3 = cfg.sb3
    cls = algorithm_class(str(sb3.algorithm))
    if str(sb3.algorithm) in OFF_POLICY and not np.all(np.isfinite(vec_env.action_space.high)):
        raise ValueError(
            f"sb3.algorithm={sb3.algorithm}: needs a bounded action space, but this task's is "
            "unbounded; set manager_env.config.action_clip_value"
        )
    hyper = OmegaConf.to_container(sb3.hyperparameters, resolve=True)
    try:
        return cls(
            str(sb3.policy),
            vec_env,
            seed=int(cfg.seed),
            device=_torch_device(cfg.device),
            verbose=0,
            **hyper,
        )
    except TypeError as err:
        raise ValueError(f"sb3.hyperparameters: {err}") from None


def checkpoint_state(model, algorithm: str, iteration: int) -> dict:
    """SB3's state dicts and tensors (no pickled objects), plus our counters."""
    _, tensor_names = model._get_torch_save_params()
    return {
        "kind": "sb3",
        "algorithm": algorithm,
        "iteration": int(iteration),
        "total_env_steps": int(model.num_timesteps),
        "n_updates": int(getattr(model, "_n_updates", 0)),
        "parameters": model.get_parameters(),
        "tensors": {name: getattr(model, name).detach().cpu() for name in tensor_names},
    }


def load_state(model, state: dict, algorithm: str, where: Path) -> int:
    """Restore a checkpoint_state into `model`; -> its iteration."""
    if state.get("kind") != "sb3" or state.get("algorithm") != algorithm:
        raise CheckpointError(
            f"checkpoint {where}: written by {state.get('kind', 'trl')}/"
            f"{state.get('algorithm', 'ppo')}, not sb3/{algorithm}: resume with the same preset"
        )
    try:
        model.set_parameters(state["parameters"], exact_match=True, device=model.device)
    except (ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {where}: does not match this model ({err})") from None
    for name, tensor in state.get("tensors", {}).items():
        with torch.no_grad():
            getattr(model, name).copy_(tensor.to(model.device))
    model.num_timesteps = int(state["total_env_steps"])
    model._n_updates = int(state["n_updates"])
    return int(state["iteration"])


class MetricsCsvWriter(KVWriter):
    """SB3 logger output -> our metrics.csv (same writer and resume rules as TRL runs)."""

    def __init__(self, path: Path, start_iteration: int):
        from gear_sonic.trl.callbacks.metrics_csv import MetricsCsvCallback

        self.csv = MetricsCsvCallback(path)
        self.csv.on_train_start(_trainer_view(start_iteration))  # drop rows past the checkpoint

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        iteration = int(key_values["iteration"])
        self.csv.on_iteration_end(_trainer_view(iteration), iteration, dict(key_values))

    def close(self) -> None:
        pass


def run_sb3_training(cfg: DictConfig, hydra_files: dict[str, str] | None = None) -> Path:
    from gear_sonic import storage
    from gear_sonic.train_agent_trl import prepare_experiment_dir, resume_mode

    sb3 = cfg.sb3
    algorithm = str(sb3.algorithm)
    algorithm_class(algorithm)  # a bad name fails before the env starts
    total = int(sb3.iterations)
    steps_per_iteration = int(sb3.steps_per_iteration)
    if total < 1 or steps_per_iteration < 1:
        raise ValueError("sb3.iterations and sb3.steps_per_iteration must be >= 1")
    with open_dict(cfg):  # meta.yaml records the planned length under this key for every run
        OmegaConf.update(cfg, "algo.config.num_learning_iterations", total, force_add=True)
    cfg.experiment_dir = str(cfg.experiment_dir)
    if not isinstance(storage.location(cfg.experiment_dir), Path):
        raise ValueError(  # noqa: TRY004 (a config value, reported in one line)
            f"experiment_dir={cfg.experiment_dir}: SB3 runs write a local dir only (object "
            "storage is for our trainer's runs); set base_dir or experiment_dir to a local path"
        )
    resume = resume_mode(cfg)
    exp_dir = prepare_experiment_dir(cfg, resume, hydra_files or {})

    on_cpu = _torch_device(cfg.device) == "cpu"
    with torch_threads(sb3.get("torch_threads") if on_cpu else None):
        return _train(cfg, exp_dir, resume, total, steps_per_iteration)


@contextmanager
def torch_threads(count: int | None):
    """torch's intra-op threads set to `count` inside the block (None: unchanged)."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(cfg: DictConfig, exp_dir: Path, resume: bool, total: int, steps_per_iteration: int):
    from gear_sonic.experiment import record_launch

    sb3, algorithm = cfg.sb3, str(cfg.sb3.algorithm)
    vec_env = VecMonitor(SB3VecEnv(build_sb3_env(cfg), sb3.get("obs_group")))
    model = build_model(cfg, vec_env)
    iteration = 0
    if resume:
        iteration = load_state(model, load_checkpoint(exp_dir / "last.pt"), algorithm, exp_dir)
        print(f"resumed {exp_dir} at iteration {iteration}")
    record_launch(exp_dir, iteration, total, 1)
    if iteration >= total:
        print(f"{exp_dir} is already at iteration {iteration} of sb3.iterations={total}")
        vec_env.close()
        return exp_dir
    model.set_logger(
        Logger(None, [MetricsCsvWriter(exp_dir / "metrics.csv", iteration), _StdoutFormat()])
    )

    save_interval = int(sb3.get("save_interval", 1))
    try:
        while iteration < total:
            start, steps_before = time.perf_counter(), model.num_timesteps
            model.learn(steps_per_iteration, reset_num_timesteps=False, log_interval=None)
            iteration += 1
            _record_iteration(model, iteration, steps_before, time.perf_counter() - start)
            if iteration % save_interval == 0 or iteration == total:
                save_checkpoint(checkpoint_state(model, algorithm, iteration), exp_dir / "last.pt")
    except KeyboardInterrupt:
        print("\nstopped: saving last.pt", file=sys.stderr)
        save_checkpoint(checkpoint_state(model, algorithm, iteration), exp_dir / "last.pt")
    _save_zip_atomically(model, exp_dir / "sb3_model.zip")
    vec_env.close()
    return exp_dir


def _record_iteration(model, iteration: int, steps_before: int, seconds: float) -> None:
    episodes = list(model.ep_info_buffer or [])
    logger = model.logger
    logger.record("iteration", iteration)
    logger.record("total_env_steps", model.num_timesteps)
    logger.record("env_steps_per_s", (model.num_timesteps - steps_before) / max(seconds, 1e-9))
    logger.record(
        "mean_reward", float(np.mean([e["r"] for e in episodes])) if episodes else float("nan")
    )
    logger.record(
        "mean_episode_length",
        float(np.mean([e["l"] for e in episodes])) if episodes else float("nan"),
    )
    logger.dump(model.num_timesteps)


def _save_zip_atomically(model, path: Path) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    model.save(temp)  # SB3 appends .zip to a name without it
    written = temp if temp.exists() else temp.with_name(temp.name + ".zip")
    os.replace(written, path)


class _StdoutFormat(HumanOutputFormat):
    """One short line per iteration (SB3's table is long for a terminal)."""

    def __init__(self):
        super().__init__(sys.stdout)

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        get = lambda key: float(key_values.get(key, float("nan")))
        print(
            f"it {int(get('iteration'))} | steps {int(get('total_env_steps'))} | "
            f"{get('env_steps_per_s'):,.0f} steps/s | reward {get('mean_reward'):.3f} | "
            f"len {get('mean_episode_length'):.1f}",
            flush=True,
        )


def _trainer_view(iteration: int) -> SimpleNamespace:
    """What MetricsCsvCallback reads from a trainer."""
    return SimpleNamespace(iteration=iteration, accelerator=SimpleNamespace(is_main_process=True))


def _torch_device(device) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)
