"""Every task as a gymnasium id, registered on import of `gear_sonic.gym_interop`.

Tasks are the experiment presets under config/exp/ (minus the learner presets in exp/sb3 and
exp/gym), so a new preset is a new id with no extra work: `manager/locomotion/go2_velocity_cpu`
is `gear_sonic/Go2VelocityCpu-v0` (the file name in CamelCase; parent folders are prepended
when two presets share a name). mjlab's cartpole tasks are registered too, as small demos.

    import gear_sonic.gym_interop  # registers; or prefix the id: "gear_sonic.gym_interop:<id>"
    env = gymnasium.make("gear_sonic/Go2VelocityCpu-v0", device="cpu")          # one env
    envs = gymnasium.make_vec("gear_sonic/Go2VelocityCpu-v0", num_envs=64)      # batched

Keyword arguments: device, seed, overrides (Hydra overrides of the preset), episode_length_s.
`make` builds one env (a `gymnasium.Env`, no autoreset); `make_vec` the batched VectorEnv (SAME_STEP).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import gymnasium
from omegaconf import DictConfig

from gear_sonic.gym_interop.single_env import ManagerSingleEnv
from gear_sonic.gym_interop.vector_env import ManagerVectorEnv

NAMESPACE = "gear_sonic"
VERSION = "v0"
EXP_DIR = Path(__file__).resolve().parents[2] / "config" / "exp"
LEARNER_PRESET_DIRS = ("sb3", "gym")  # presets that choose a learner, not a task
# mjlab's own small tasks: name -> "module:function" returning a ManagerBasedRlEnvCfg.
MJLAB_TASKS = {
    "MjlabCartpoleBalance": "mjlab.tasks.cartpole.cartpole_env_cfg:cartpole_balance_env_cfg",
    "MjlabCartpoleSwingup": "mjlab.tasks.cartpole.cartpole_env_cfg:cartpole_swingup_env_cfg",
}
MJLAB_ACTION_BOUND = 1.0  # cartpole's effort action; its reward expects |a| <= 1


def discover_task_presets(exp_dir: Path = EXP_DIR) -> dict[str, str]:
    """Task name -> preset (path under config/exp without .yaml)."""
    presets = sorted(
        p.relative_to(exp_dir).with_suffix("").as_posix()
        for p in exp_dir.rglob("*.yaml")
        if p.relative_to(exp_dir).parts[0] not in LEARNER_PRESET_DIRS
    )
    names: dict[str, str] = {}
    for preset in presets:
        parts = preset.split("/")
        depth = 1
        while _camel(parts[-depth:]) in names and depth < len(parts):
            depth += 1
        names[_camel(parts[-depth:])] = preset
    return names


def task_id(name: str) -> str:
    return f"{NAMESPACE}/{name}-{VERSION}"


def registered_ids() -> list[str]:
    return sorted(i for i in gymnasium.registry if i.startswith(f"{NAMESPACE}/"))


def check_env_id(env_id: str) -> None:
    """Raise one line naming the registered ids when `env_id` is not one of them."""
    if env_id not in gymnasium.registry:
        raise ValueError(
            f"unknown env id {env_id!r}; registered gear_sonic tasks: {', '.join(registered_ids())}"
        )


def register_tasks() -> None:
    tasks = {name: {"preset": preset} for name, preset in discover_task_presets().items()}
    tasks.update({name: {"mjlab_cfg": target} for name, target in MJLAB_TASKS.items()})
    for name, kwargs in tasks.items():
        if task_id(name) in gymnasium.registry:
            continue
        gymnasium.register(
            id=task_id(name),
            entry_point=make_single_env,
            vector_entry_point=make_vector_env,
            disable_env_checker=True,  # the spaces are checked in the test suite instead
            kwargs=kwargs,
        )


def make_vector_env(
    num_envs: int = 1,
    device: str | None = None,
    seed: int = 0,
    preset: str | None = None,
    mjlab_cfg: str | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    episode_length_s: float | None = None,
    **unused,
) -> ManagerVectorEnv:
    """The batched env of a preset (Hydra `overrides` apply) or of an mjlab task config."""
    if unused:
        raise TypeError(f"gear_sonic task: unknown keyword arguments {sorted(unused)}")
    if mjlab_cfg is not None:
        return build_mjlab_task(mjlab_cfg, num_envs, device, seed, episode_length_s)
    overrides = list(overrides)
    if episode_length_s is not None:
        overrides.append(f"manager_env.config.episode_length_s={episode_length_s}")
    cfg = compose_preset(preset, overrides)
    return build_vector_env_from_cfg(cfg, num_envs=num_envs, device=device, seed=seed)


def make_single_env(num_envs: int = 1, **kwargs) -> ManagerSingleEnv:
    if num_envs != 1:
        raise ValueError(
            f"gymnasium.make builds one env (num_envs={num_envs} given): use "
            "gymnasium.make_vec(id, num_envs=N) for a batched env"
        )
    return ManagerSingleEnv(make_vector_env(num_envs=1, **kwargs))


def build_vector_env_from_cfg(
    cfg: DictConfig,
    num_envs: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    evaluation: bool = False,
) -> ManagerVectorEnv:
    """From a composed config (the one `train_agent_trl.py` sees)."""
    from gear_sonic.envs import create_manager_env

    wrapped = create_manager_env(
        cfg, device=device, num_envs=num_envs, seed=seed, evaluation=evaluation
    )
    return ManagerVectorEnv(wrapped.env, action_bound=wrapped.action_clip)


def build_mjlab_task(
    target: str, num_envs: int, device: str | None, seed: int, episode_length_s: float | None
) -> ManagerVectorEnv:
    from mjlab.envs import ManagerBasedRlEnv

    from gear_sonic.envs.manager_env.builder import resolve_device
    from gear_sonic.sim import simulation_backend

    module, function = target.split(":")
    env_cfg = getattr(importlib.import_module(module), function)()
    env_cfg.scene.num_envs = int(num_envs)
    env_cfg.seed = int(seed)
    if episode_length_s is not None:
        env_cfg.episode_length_s = float(episode_length_s)
    device = resolve_device(device)
    with simulation_backend("auto", device):
        env = ManagerBasedRlEnv(env_cfg, device=device)
    return ManagerVectorEnv(env, action_bound=MJLAB_ACTION_BOUND)


def compose_preset(preset: str, overrides: list[str]) -> DictConfig:
    """The composed config of `+exp=<preset>` (inside a running Hydra app, its config tree)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    arguments = [f"+exp={preset}", *overrides]
    if GlobalHydra.instance().is_initialized():
        return compose("base", overrides=arguments)
    with initialize_config_dir(config_dir=str(EXP_DIR.parent), version_base="1.3"):
        return compose("base", overrides=arguments)


def _camel(parts: list[str]) -> str:
    return "".join(word[:1].upper() + word[1:] for part in parts for word in part.split("_"))
