"""Reference state initialisation for AMP: reset a share of the envs onto random frames of the
expert clips (root height, orientation and velocities, joint positions and velocities).

Starting inside the clips' state distribution shows the policy (and the discriminator) expert-like
states from the first iteration, instead of only the default standing pose (the AMP paper's
reference state initialisation). The root keeps its clip height and heading but is placed at the
env origin.
"""

from __future__ import annotations

import fnmatch

import torch
from mjlab.managers import ManagerTermBase

from gear_sonic.utils.motion_lib import MotionLib


class reset_to_clip_frames(ManagerTermBase):  # snake_case like the mjlab terms it sits beside
    """Event (mode "reset"): params motion_file, clips (shell patterns on clip keys), share."""

    def __init__(self, cfg, env):
        super().__init__(env)
        params = cfg.params
        share = float(params.get("share", 1.0))
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"events.reset_to_clip_frames.params.share must be in [0, 1], got {share}")
        self.share = share
        entity_name = params.get("entity_name", "robot")
        self.robot = env.scene[entity_name]
        patterns = list(params.get("clips", ["*"]))
        # The bare robot (free joint first) for the clips' forward kinematics.
        robot_model = env.cfg.scene.entities[entity_name].spec_fn().compile()
        root_body = robot_model.body(1).name
        self.motion = MotionLib(
            params["motion_file"],
            mj_model=robot_model,
            body_names=[root_body],
            device=env.device,
            target_fps=1.0 / env.step_dt,
            key_regex="|".join(f"(?:{fnmatch.translate(p)})" for p in patterns),
            seed=int(env.cfg.seed or 0),
            trust_pickle=bool(params.get("trust_pickle", False)),
        )

    def __call__(self, env, env_ids: torch.Tensor | None, motion_file=None, clips=None,
                 share: float = 1.0, entity_name: str = "robot", trust_pickle: bool = False):
        if env_ids is None:
            env_ids = torch.arange(env.num_envs, device=env.device)
        chosen = env_ids[torch.rand(len(env_ids), device=env.device) < self.share]
        num = len(chosen)
        if num == 0:
            return
        motion = self.motion
        slots = torch.randint(0, motion.num_clips, (num,), device=env.device)
        # The last frame has no forward difference for its velocities: stop one short.
        frames = (torch.rand(num, device=env.device) * (motion.clip_num_frames[slots] - 1)).long()
        state = motion.state_at_frames(slots, frames)
        root_pos = env.scene.env_origins[chosen].clone()
        root_pos[:, 2] = state.body_pos_w[:, 0, 2]
        root_state = torch.cat(
            [root_pos, state.body_quat_w[:, 0], state.body_lin_vel_w[:, 0], state.body_ang_vel_w[:, 0]],
            dim=-1,
        )
        self.robot.write_joint_state_to_sim(state.joint_pos, state.joint_vel, env_ids=chosen)
        self.robot.write_root_state_to_sim(root_state, env_ids=chosen)
