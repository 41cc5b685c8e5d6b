"""The learner's view of an mjlab env: observation groups as tensors, clipped actions, time-outs.

Groups come out as the env computes them: a concatenated group is one (N, D) tensor, a
non-concatenated group (the tokenizer) is a dict of named term tensors whose shapes are recorded
in `observation_shapes`, so consumers read term sizes from here, never from hard-coded offsets.
"""

from __future__ import annotations

import torch
from mjlab.envs import ManagerBasedRlEnv

from gear_sonic.envs.manager_env.mdp.actions import raw_actions_for_targets


class ManagerEnvWrapper:
    def __init__(self, env: ManagerBasedRlEnv, action_clip: float | None = None):
        self.env = env
        self.action_clip = action_clip
        manager = env.observation_manager
        self.observation_shapes: dict[str, tuple[int, ...] | dict[str, tuple[int, ...]]] = {}
        self.term_layout: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for group, names in manager.active_terms.items():
            dims = [tuple(d) for d in manager.group_obs_term_dim[group]]
            self.term_layout[group] = list(zip(names, dims))
            if manager.group_obs_concatenate[group]:
                self.observation_shapes[group] = tuple(manager.group_obs_dim[group])
            else:
                self.observation_shapes[group] = dict(zip(names, dims))
        self._obs, _ = env.reset()

    # ---------------------------------------------------------------- properties
    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    @property
    def device(self) -> torch.device:
        return torch.device(self.env.device)

    @property
    def num_actions(self) -> int:
        return self.env.action_manager.total_action_dim

    @property
    def step_dt(self) -> float:
        return self.env.step_dt

    @property
    def max_episode_length(self) -> int:
        return self.env.max_episode_length

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.env.episode_length_buf

    def command(self, name: str = "motion"):
        return self.env.command_manager.get_term(name)

    # ---------------------------------------------------------------- stepping
    def get_observations(self) -> dict:
        return self._obs

    def reset(self) -> dict:
        self._obs, _ = self.env.reset()
        return self._obs

    def step(self, actions: torch.Tensor):
        """-> obs, reward (N,), done (N,) bool, extras with `time_outs` and `terminated`."""
        if self.action_clip is not None:
            actions = torch.clamp(actions, -self.action_clip, self.action_clip)
        obs, reward, terminated, truncated, extras = self.env.step(actions)
        self._obs = obs
        extras["time_outs"] = truncated
        extras["terminated"] = terminated
        return obs, reward, terminated | truncated, extras

    def reference_actions(self, command_name: str = "motion") -> torch.Tensor:
        """Actions whose PD targets equal the current reference joints (motion replay, no policy)."""
        term = self.env.action_manager.get_term("joint_pos")
        ref = self.command(command_name).ref_joint_pos
        return raw_actions_for_targets(term, ref, ref)

    # ---------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict:
        """Env state worth keeping in a checkpoint (adaptive sampling counts per command)."""
        out = {}
        for name in self.env.command_manager.active_terms:
            term = self.command(name)
            if hasattr(term, "state_dict"):
                out[name] = term.state_dict()
        return {"commands": out}

    def load_state_dict(self, state: dict) -> None:
        for name, term_state in state.get("commands", {}).items():
            self.command(name).load_state_dict(term_state)

    def resample_motions(self, command_name: str = "motion") -> None:
        """Draw a new resident clip subset and restart every env on it.

        The restart is a full env reset: fresh start frames on the new clips, episode counters at
        zero, observation history and last actions cleared, as at the start of training.
        """
        self.command(command_name).resample_resident_clips()
        self._obs, _ = self.env.reset()

    def close(self) -> None:
        self.env.close()
