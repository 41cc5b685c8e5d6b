"""Train a policy: `python gear_sonic/train_agent_trl.py +exp=<preset> [overrides]`.

Several processes (each steps its own `num_envs`, seed + rank; rank 0 writes the experiment dir):
    torchrun --nproc_per_node N gear_sonic/train_agent_trl.py +exp=...
    accelerate launch --config_file scripts/accelerate/cpu_2proc.yaml gear_sonic/train_agent_trl.py +exp=...
    accelerate launch --multi_gpu --num_processes N gear_sonic/train_agent_trl.py +exp=...

    +checkpoint=PATH                 start a new experiment from these policy/value weights
    experiment_dir=DIR +resume=True  continue DIR from its last.pt (weights, optimisers, LR,
                                     counters, adaptive sampling) up to
                                     algo.config.num_learning_iterations in total
    experiment_dir=DIR +resume=auto  continue DIR if it has a last.pt, else start a run there
                                     (one command line for a job that a cluster may requeue)
    -m seed=1,2                      a sweep: one experiment dir per job, named by its overrides
    base_dir=s3://bucket/prefix      the experiment dir in object storage (any fsspec URL)
    -m hydra/sweeper=optuna ...      an optuna search: each job returns the last iteration's
                                     `+objective=KEY` (a metrics.csv column, default mean_reward)
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running the file directly from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from gear_sonic.trl.distributed import DistributedSetupError  # noqa: E402
from gear_sonic.utils.log_setup import configure_logging  # noqa: E402

log = logging.getLogger("gear_sonic.train")


def resume_mode(cfg: DictConfig) -> bool:
    """+resume=True/False, or auto: resume when the experiment dir has a last.pt."""
    from gear_sonic import storage

    value = cfg.get("resume", False)
    if isinstance(value, str) and value.lower() == "auto":
        storage.check_access(cfg.experiment_dir)
        return storage.is_file(storage.join(cfg.experiment_dir, "last.pt"))
    if not isinstance(value, bool):
        raise ValueError(f"+resume={value!r}: use true, false or auto")
    return value


def prepare_experiment_dir(cfg: DictConfig, resume: bool, hydra_files: dict[str, str]):
    """Rank 0 only. A new run claims a dir no other run holds (a suffix on collision), except
    under +resume=auto, whose dir belongs to the job that names it. -> a Path, or the URL of a
    remote dir."""
    from gear_sonic import storage
    from gear_sonic.experiment import claim_new_dir, write_new_run_files

    exp_dir = storage.location(cfg.experiment_dir)
    if str(cfg.get("resume", "")).lower() == "auto" and not resume:
        storage.makedirs(exp_dir)
        write_new_run_files(cfg, exp_dir, hydra_files)
        return exp_dir
    if resume:
        storage.check_access(exp_dir)
        if not storage.is_file(storage.join(exp_dir, "last.pt")):
            raise FileNotFoundError(
                f"+resume=True: no last.pt in experiment_dir={exp_dir}; pass the dir of an earlier run "
                "(experiment_dir=logs_rl/<project>/<experiment>-<timestamp> +resume=True)"
            )
        return exp_dir
    claimed = claim_new_dir(exp_dir)
    if claimed != exp_dir:
        log.warning("experiment_dir %s is taken by another run: writing to %s", exp_dir, claimed)
    cfg.experiment_dir = str(claimed)
    write_new_run_files(cfg, claimed, hydra_files)
    return claimed


def build_callbacks(cfg: DictConfig) -> list:
    from hydra.utils import instantiate

    return [instantiate(entry) for entry in (cfg.get("callbacks") or {}).values()]


def run_training(cfg: DictConfig, hydra_files: dict[str, str] | None = None) -> Path:
    from accelerate.utils import broadcast_object_list
    from hydra.utils import get_class, instantiate

    from gear_sonic import storage
    from gear_sonic.checkpoint import load_checkpoint
    from gear_sonic.envs import create_manager_env
    from gear_sonic.experiment import record_launch
    from gear_sonic.trl.builders import build_policy_and_value, load_weights, ppo_config
    from gear_sonic.trl.distributed import (
        env_device,
        exit_cleanly_on_sigterm,
        lost_peer_message,
        make_accelerator,
    )
    from gear_sonic.trl.trainer.ppo_config import check_batch_layout

    if "sb3" in cfg:  # a Stable-Baselines3 learner (+exp=sb3/<task>_<algo>)
        from gear_sonic.sb3.train import run_sb3_training

        return run_sb3_training(cfg, hydra_files)
    ppo = ppo_config(cfg)  # fail on a bad algo key before anything slow starts
    auto_envs = str(cfg.num_envs).lower() == "auto"  # measured once the device is known
    if not auto_envs:
        check_batch_layout(int(cfg.num_envs), ppo.num_mini_batches)
    cfg.experiment_dir = str(cfg.experiment_dir)  # resolve ${now:...} once
    resume = resume_mode(cfg)
    checkpoint = cfg.get("checkpoint")
    if checkpoint and not storage.is_file(checkpoint):
        raise FileNotFoundError(f"+checkpoint={checkpoint}: no such file")

    accelerator = make_accelerator(cfg.device, float(cfg.dist_timeout_s))
    if auto_envs:
        from gear_sonic.utils.auto_num_envs import resolve_auto_num_envs

        resolve_auto_num_envs(cfg, env_device(accelerator), ppo.num_steps_per_env)
        check_batch_layout(int(cfg.num_envs), ppo.num_mini_batches)
    if accelerator.num_processes > 1:
        exit_cleanly_on_sigterm(accelerator.process_index)
    # Rank 0 claims the dir (it may add a suffix); every rank then uses rank 0's path.
    exp_dir_or_error = [None]
    if accelerator.is_main_process:
        try:
            exp_dir_or_error = [str(prepare_experiment_dir(cfg, resume, hydra_files or {}))]
        except (FileNotFoundError, FileExistsError, storage.StorageError) as err:
            exp_dir_or_error = [err]
    exp_dir_or_error = broadcast_object_list(exp_dir_or_error, from_process=0)
    if isinstance(exp_dir_or_error[0], Exception):
        raise exp_dir_or_error[0]
    cfg.experiment_dir = exp_dir_or_error[0]
    exp_dir = storage.location(cfg.experiment_dir)

    seed = int(cfg.seed) + accelerator.process_index
    if "gym" in cfg:  # any gymnasium env for our trainer (+exp=gym/ppo gym.env_id=<id>)
        from gear_sonic.gym_interop.torch_env import make_gymnasium_torch_env

        env = make_gymnasium_torch_env(cfg, device=env_device(accelerator), seed=seed)
    else:
        env = create_manager_env(cfg, device=env_device(accelerator), seed=seed)
    actor, critic = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    if checkpoint:
        load_weights(actor, critic, checkpoint)
    extra = {
        key: instantiate(cfg[key])
        for key in ("aux_losses", "bc_loss", "distillation", "amp", "world_model")
        if key in cfg
    }
    # The class is resolved, not instantiated by Hydra, which would turn the dataclass into a DictConfig.
    trainer_cls = get_class(cfg.trainer._target_)
    trainer = trainer_cls(
        env=env,
        actor=actor,
        critic=critic,
        cfg=ppo,
        accelerator=accelerator,
        callbacks=build_callbacks(cfg),
        experiment_dir=exp_dir,
        **extra,
    )
    if resume:
        trainer.load_state_dict(
            load_checkpoint(storage.join(exp_dir, "last.pt"), map_location=env_device(accelerator))
        )
        accelerator.print(f"resumed {exp_dir} at iteration {trainer.iteration}")

    # num_learning_iterations is the run's total, so a requeued job with its own command line ends.
    total = ppo.num_learning_iterations
    if accelerator.is_main_process:
        record_launch(exp_dir, trainer.iteration, total, accelerator.num_processes)
    if trainer.iteration >= total:
        accelerator.print(
            f"{exp_dir} is already at iteration {trainer.iteration} of "
            f"algo.config.num_learning_iterations={total}: raise it to train longer"
        )
        env.close()
        return exp_dir

    def request_stop(signum, frame):
        accelerator.print(
            "\nstop requested: finishing this iteration and saving last.pt (Ctrl-C again to abort)"
        )
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, request_stop)
    try:
        trainer.train(total - trainer.iteration)
    except RuntimeError as err:
        message = lost_peer_message(accelerator.process_index, err)
        if accelerator.num_processes == 1 or message is None:
            raise
        print(message, file=sys.stderr, flush=True)
        os._exit(1)  # the process group is broken: a normal exit would hang in its teardown
    env.close()
    return exp_dir


def apply_sweep_naming(cfg: DictConfig) -> dict[str, str]:
    """Under `-m`, name each job's dir by its number and swept overrides; -> files for .hydra/
    (the composed config itself is the run's config.yaml)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from gear_sonic.experiment import sweep_dir_suffix

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    explicit_dir = any(o.split("=", 1)[0].lstrip("+~") == "experiment_dir" for o in overrides)
    if hydra_cfg.mode == RunMode.MULTIRUN and not explicit_dir:
        swept = swept_keys(sys.argv[1:])
        job_values = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
        cfg.experiment_dir = (
            f"{cfg.experiment_dir}_{sweep_dir_suffix(hydra_cfg.job.num, job_values)}"
        )
    return {"overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(overrides))}


def swept_keys(arguments: list[str]) -> set[str]:
    """Keys the command line sweeps over (`seed=1,2`, `lr=range(1,3)`, ...)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    candidates = [a for a in arguments if "=" in a and not a.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(candidates)
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


@hydra.main(config_path="../config", config_name="base", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from gear_sonic.cluster import export_submitit_distributed_env
    from gear_sonic.experiment import final_metric

    configure_logging()
    export_submitit_distributed_env()  # a multi-task SLURM job's ranks; no-op otherwise
    try:
        exp_dir = run_training(cfg, apply_sweep_naming(cfg))
        # The job's return value: what a sweeper that optimises (hydra/sweeper=optuna) reads.
        objective = cfg.get("objective")
        return final_metric(exp_dir, None if objective is None else str(objective))
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, DistributedSetupError) as err:
        # Bad input: one clear line, no traceback wall.
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
