"""Train a policy: `python gear_sonic/train_agent_trl.py +exp=<preset> [overrides]`.

Several processes: `accelerate launch --num_processes N gear_sonic/train_agent_trl.py +exp=...`
(`--cpu` on machines without GPUs). Each process runs its own envs with seed + rank; rank 0
writes the experiment dir.

    +checkpoint=PATH                 start a new experiment from these policy/value weights
    experiment_dir=DIR +resume=True  continue DIR from its last.pt (weights, optimisers, LR,
                                     counters, adaptive sampling) and append to its metrics.csv
"""

from __future__ import annotations

import secrets
import signal
import string
import sys
from datetime import datetime, timezone
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running the file directly from a checkout
    sys.path.insert(0, str(REPO_ROOT))


def prepare_experiment_dir(cfg: DictConfig, resume: bool, is_main: bool) -> Path:
    exp_dir = Path(cfg.experiment_dir)
    if resume:
        if not (exp_dir / "last.pt").is_file():
            raise FileNotFoundError(
                f"+resume=True: no last.pt in experiment_dir={exp_dir}; pass the dir of an earlier run "
                "(experiment_dir=logs_rl/<project>/<experiment>-<timestamp> +resume=True)"
            )
        return exp_dir
    if is_main:
        from gear_sonic.utils.atomic_io import atomic_write_text

        exp_dir.mkdir(parents=True, exist_ok=True)
        # Unresolved, so the file shows the interpolations a reader can follow.
        atomic_write_text(OmegaConf.to_yaml(cfg, resolve=False), exp_dir / "config.yaml")
        meta = {
            "wandb_run_id": "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)),
            "max_train_steps": int(cfg.algo.config.num_learning_iterations),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        atomic_write_text(OmegaConf.to_yaml(OmegaConf.create(meta)), exp_dir / "meta.yaml")
    return exp_dir


def build_callbacks(cfg: DictConfig) -> list:
    from hydra.utils import instantiate

    return [instantiate(entry) for entry in (cfg.get("callbacks") or {}).values()]


def run_training(cfg: DictConfig) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list
    from hydra.utils import get_class, instantiate

    from gear_sonic.checkpoint import load_checkpoint
    from gear_sonic.envs import create_manager_env
    from gear_sonic.envs.manager_env.builder import resolve_device
    from gear_sonic.trl.builders import build_policy_and_value, load_weights, ppo_config
    from gear_sonic.trl.trainer.ppo_config import check_batch_layout

    ppo = ppo_config(cfg)  # fail on a bad algo key before anything slow starts
    check_batch_layout(int(cfg.num_envs), ppo.num_mini_batches)
    resume = bool(cfg.get("resume", False))
    checkpoint = cfg.get("checkpoint")
    if checkpoint and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"+checkpoint={checkpoint}: no such file")

    accelerator = Accelerator(cpu=resolve_device(cfg.device) == "cpu")
    # Each process resolves ${now:...} itself; all of them use rank 0's experiment dir.
    shared = broadcast_object_list([str(cfg.experiment_dir)], from_process=0)
    cfg.experiment_dir = shared[0]
    exp_dir = prepare_experiment_dir(cfg, resume, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    env = create_manager_env(cfg, device=str(accelerator.device), seed=int(cfg.seed) + accelerator.process_index)
    actor, critic = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    if checkpoint:
        load_weights(actor, critic, checkpoint)
    extra = {key: instantiate(cfg[key]) for key in ("aux_losses", "bc_loss") if key in cfg}
    # The class is resolved, not instantiated by Hydra, which would turn the dataclass into a DictConfig.
    trainer_cls = get_class(cfg.trainer._target_)
    trainer = trainer_cls(
        env=env, actor=actor, critic=critic, cfg=ppo, accelerator=accelerator,
        callbacks=build_callbacks(cfg), experiment_dir=exp_dir, **extra,
    )
    if resume:
        trainer.load_state_dict(load_checkpoint(exp_dir / "last.pt", map_location=accelerator.device))
        accelerator.print(f"resumed {exp_dir} at iteration {trainer.iteration}")

    def request_stop(signum, frame):
        accelerator.print("\nstop requested: finishing this iteration and saving last.pt (Ctrl-C again to abort)")
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, request_stop)
    trainer.train(ppo.num_learning_iterations)
    env.close()
    return exp_dir


@hydra.main(config_path="../config", config_name="base", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run_training(cfg)
    except (FileNotFoundError, ValueError, KeyError) as err:
        # Bad input: one clear line, no traceback wall.
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
