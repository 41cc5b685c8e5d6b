"""A trained run (ours or SB3's) as `policy(obs, deterministic) -> actions` plus the batched
numpy env it acts in: what the episode evaluator (gear_sonic/eval/episodes.py) needs.

The run is found by its experiment dir (config.yaml + a checkpoint). Our task presets play in
`ManagerVectorEnv` (evaluation mode: train-only events off), `+exp=gym/...` runs in gymnasium's
vectoriser with SAME_STEP autoreset, SB3 runs in the env their preset names.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from omegaconf import DictConfig, OmegaConf

from gear_sonic.checkpoint import load_checkpoint, require_keys
from gear_sonic.trl.modules.recurrent_modules import reset_memory


def load_run_config(exp_dir: str | Path, device: str) -> DictConfig:
    path = Path(exp_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{exp_dir}: no config.yaml; pass the experiment dir of a run")
    cfg = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, False)
    cfg.experiment_dir = str(exp_dir)  # the saved value may be an unresolved ${now:...}
    cfg.device = device
    return cfg


def load_policy_and_env(
    exp_dir: str | Path,
    checkpoint: str | Path | None = None,
    num_envs: int = 1,
    device: str = "cpu",
    seed: int = 0,
):
    """-> (batched env, policy). The env's observations are numpy (dicts of) arrays."""
    cfg = load_run_config(exp_dir, device)
    checkpoint = Path(checkpoint) if checkpoint else Path(exp_dir) / "last.pt"
    state = load_checkpoint(checkpoint, map_location=device)
    if "sb3" in cfg:
        return _sb3_policy(cfg, state, checkpoint, num_envs, seed)
    require_keys(state, ("actor",), checkpoint)
    if "gym" in cfg:
        envs = make_same_step_vector_env(
            str(cfg.gym.env_id), num_envs, OmegaConf.to_container(cfg.gym.env_kwargs, resolve=True)
        )
        shapes = {"obs": (int(np.prod(envs.single_observation_space.shape)),)}
        num_actions = int(np.prod(envs.single_action_space.shape))
    else:
        from gear_sonic.gym_interop.registration import build_vector_env_from_cfg

        envs = build_vector_env_from_cfg(cfg, num_envs, device, seed, evaluation=True)
        shapes = {
            group: space.shape
            if hasattr(space, "shape")
            else {k: s.shape for k, s in space.items()}
            for group, space in envs.single_observation_space.items()
        }
        num_actions = int(envs.single_action_space.shape[0])
    actor = build_actor(cfg, shapes, num_actions, state["actor"], device)
    flat_obs = "gym" in cfg

    @torch.no_grad()
    def policy(obs, deterministic: bool):
        obs = {"obs": np.asarray(obs).reshape(num_envs, -1)} if flat_obs else obs
        obs = _to_torch(obs, device)
        actions = actor.act_inference(obs) if deterministic else actor.act(obs)[0]
        return actions.cpu().numpy()

    def forget(finished) -> None:
        dones = None if finished is None else torch.as_tensor(finished, device=device)
        reset_memory(actor, dones)

    policy.reset = forget
    return envs, policy


def make_same_step_vector_env(env_id: str, num_envs: int, env_kwargs: dict | None = None):
    return gymnasium.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **(env_kwargs or {}),
    )


def build_actor(cfg: DictConfig, shapes: dict, num_actions: int, weights: dict, device: str):
    from gear_sonic.checkpoint import load_module_state
    from gear_sonic.trl.builders import build_policy_and_value

    actor, _ = build_policy_and_value(cfg, shapes, num_actions)
    load_module_state(actor, weights, "checkpoint actor")
    return actor.to(device).eval()


def sb3_policy(model, obs_group: str):
    """An SB3 model as a policy over our dict observations (it sees one group)."""

    def policy(obs, deterministic: bool):
        actions, _ = model.predict(obs[obs_group], deterministic=deterministic)
        return actions

    return policy


def _sb3_policy(cfg: DictConfig, state: dict, checkpoint: Path, num_envs: int, seed: int):
    from gear_sonic.sb3.train import build_model, build_sb3_env, load_state
    from gear_sonic.sb3.vec_env import SB3VecEnv

    cfg.num_envs, cfg.seed = int(num_envs), int(seed)
    envs = build_sb3_env(cfg)
    adapter = SB3VecEnv(envs, cfg.sb3.get("obs_group"))
    model = build_model(cfg, adapter)
    load_state(model, state, str(cfg.sb3.algorithm), checkpoint)
    return envs, sb3_policy(model, adapter.obs_group)


def _to_torch(obs, device):
    if isinstance(obs, dict):
        return {key: _to_torch(value, device) for key, value in obs.items()}
    return torch.as_tensor(obs, dtype=torch.float32, device=device)
