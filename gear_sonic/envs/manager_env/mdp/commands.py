"""Motion tracking command: which clip and frame each env follows, and the reference it sees.

Per env it holds a resident clip slot, a frame index at the env rate and an encoder mask (which
of g1 / teleop / smpl is active this episode). Once per step it gathers the reference at the
current frame and at the future frames the observations need, so every MDP term reads cached
tensors instead of querying the motion library again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import mujoco
import torch
from mjlab.entity.data import compute_velocity_from_cvel
from mjlab.managers import CommandTerm, CommandTermCfg
from mjlab.utils.lab_api.math import (
    quat_apply,
    quat_apply_inverse,
    quat_from_euler_xyz,
    quat_mul,
    sample_uniform,
)

from gear_sonic.envs.manager_env.mdp.adaptive_sampling import AdaptiveBinSampler
from gear_sonic.envs.manager_env.mdp.encoder_sampling import sample_encoder_masks
from gear_sonic.envs.manager_env.mdp.rotation_math import (
    quat_angle_between,
    relative_yaw_half_angle,
    yaw_rotate,
)
from gear_sonic.utils.motion_lib import MotionLib
from gear_sonic.utils.rotations import smpl_root_rotation

if TYPE_CHECKING:
    from mjlab.entity import Entity
    from mjlab.envs import ManagerBasedRlEnv

_POSE_KEYS = ("x", "y", "z", "roll", "pitch", "yaw")


def tracking_command(env: ManagerBasedRlEnv, command_name: str) -> TrackingCommand:
    """The env's tracking command term called `command_name` (what every MDP term reads)."""
    term = env.command_manager.get_term(command_name)
    if not isinstance(term, TrackingCommand):
        raise TypeError(
            f"command_name={command_name!r} is a {type(term).__name__}, not a tracking command: "
            "point the term's params.command_name at the `type: tracking` entry of manager_env.commands"
        )
    return term


@dataclass(kw_only=True)
class TrackingCommandCfg(CommandTermCfg):
    motion_file: str
    entity_name: str = "robot"
    body_names: tuple[str, ...] = ()  # tracked bodies; empty -> the robot's default list
    anchor_body_name: str = "pelvis"
    # Dataset filters and residency.
    key_regex: str | None = None
    remove_key_prefixes: tuple[str, ...] = ()
    max_unique_motions: int | None = None
    max_resident_clips: int | None = None  # None -> min(num_envs, 1024)
    trust_pickle: bool = False  # True: PKLs unpickled without the allow-list (trusted files only)
    # Start sampling.
    sampling_mode: Literal["adaptive", "uniform", "start"] = "adaptive"
    adaptive_bin_s: float = 1.0
    adaptive_uniform_ratio: float = 0.1
    adaptive_max_over_mean: float = 200.0
    adaptive_pullback_s: float = 4.0
    # Reference state initialisation noise.
    pose_range: dict[str, tuple[float, float]] | None = None  # None: no perturbation
    velocity_range: dict[str, tuple[float, float]] | None = None
    joint_position_range: tuple[float, float] = (0.0, 0.0)
    # Future reference frames.
    num_future_frames: int = 10
    dt_future_frames: float = 0.1
    smpl_num_future_frames: int = 10
    smpl_dt_future_frames: float = 0.02
    # Encoder sampling (order defines encoder_index columns).
    encoder_sample_probs: dict[str, float] = field(
        default_factory=lambda: {"g1": 1.0, "teleop": 1.0, "smpl": 1.0}
    )
    teleop_prob_when_smpl: float = 0.5
    # VR 3-point targets and wrist joints; empty -> the robot spec's (filled in by the builder).
    vr_body_names: tuple[str, ...] = ()
    vr_body_offsets: tuple[tuple[float, float, float], ...] = ()
    wrist_joint_names: tuple[str, ...] = ()
    lower_body_joint_names: tuple[str, ...] = (".*_hip_.*", ".*_knee_.*", ".*_ankle_.*")
    resampling_time_range: tuple[float, float] = (1.0e9, 1.0e9)

    def build(self, env: ManagerBasedRlEnv) -> TrackingCommand:
        return TrackingCommand(self, env)


class TrackingCommand(CommandTerm):
    cfg: TrackingCommandCfg

    def __init__(self, cfg: TrackingCommandCfg, env: ManagerBasedRlEnv):
        super().__init__(cfg, env)
        self.robot: Entity = env.scene[cfg.entity_name]
        if cfg.anchor_body_name not in cfg.body_names:
            raise ValueError(
                f"commands.motion.anchor_body_name={cfg.anchor_body_name!r} must be one of "
                f"commands.motion.body_names {list(cfg.body_names)}"
            )
        self.body_names = tuple(cfg.body_names)
        self.body_ids = self._find_bodies(cfg.body_names)
        self.anchor_index = self.body_names.index(cfg.anchor_body_name)
        self._sim_data = env.sim.data
        self._global_body_ids = self.robot.indexing.body_ids[self.body_ids]
        self._global_anchor_id = int(self._global_body_ids[self.anchor_index])
        self._root_body_id = self.robot.indexing.root_body_id
        self.vr_index = torch.tensor([self.body_names.index(n) for n in cfg.vr_body_names], device=self.device)
        self.vr_offsets = torch.tensor(cfg.vr_body_offsets, dtype=torch.float, device=self.device)
        self.wrist_joint_ids = self._find_joints(cfg.wrist_joint_names)
        self.lower_body_joint_ids = self._find_joints(cfg.lower_body_joint_names)

        self.motion = MotionLib(
            cfg.motion_file,
            mj_model=self._robot_only_model(),
            body_names=self.body_names,
            device=self.device,
            target_fps=1.0 / env.step_dt,
            key_regex=cfg.key_regex,
            remove_key_prefixes=cfg.remove_key_prefixes,
            max_unique_motions=cfg.max_unique_motions,
            max_resident_clips=cfg.max_resident_clips or min(self.num_envs, 1024),
            seed=int(env.cfg.seed or 0),
            trust_pickle=cfg.trust_pickle,
        )
        self.sampler = AdaptiveBinSampler(
            self.motion.dataset_num_frames,
            bin_frames=max(1, round(cfg.adaptive_bin_s / env.step_dt)),
            uniform_ratio=cfg.adaptive_uniform_ratio,
            max_over_mean=cfg.adaptive_max_over_mean,
            pullback_frames=round(cfg.adaptive_pullback_s / env.step_dt),
            device=self.device,
        )
        self.encoder_names = tuple(cfg.encoder_sample_probs)
        self.encoder_probs = torch.tensor(list(cfg.encoder_sample_probs.values()), dtype=torch.float, device=self.device)
        self.future_offsets = self._frame_offsets(cfg.num_future_frames, cfg.dt_future_frames, env.step_dt)
        self.smpl_future_offsets = self._frame_offsets(cfg.smpl_num_future_frames, cfg.smpl_dt_future_frames, env.step_dt)
        # Frame offsets of one reference query: now, G1 future frames, SMPL future frames.
        self._query_offsets = torch.cat(
            [torch.zeros(1, dtype=torch.long), self.future_offsets, self.smpl_future_offsets]
        ).to(self.device)
        self._future_rows = slice(1, 1 + len(self.future_offsets))
        self._smpl_rows = slice(1 + len(self.future_offsets), None)

        n = self.num_envs
        self.clip_slot = torch.zeros(n, dtype=torch.long, device=self.device)
        self.frame = torch.zeros(n, dtype=torch.long, device=self.device)
        self.encoder_mask = torch.zeros(n, len(self.encoder_names), device=self.device)
        self.encoder_mask[:, 0] = 1.0
        # Envs reset inside this env step keep their start frame at this step's command update.
        self._hold = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._skip_failure_record = False  # set by resample_resident_clips for the restart
        self._pose_bounds = self._range_bounds(cfg.pose_range)
        self._velocity_bounds = self._range_bounds(cfg.velocity_range)
        for name in ("anchor_pos", "anchor_rot", "body_pos", "body_rot", "joint_pos", "joint_vel"):
            self.metrics[f"error_{name}"] = torch.zeros(n, device=self.device)
        self._refresh_reference()

    # ------------------------------------------------------------------ set-up helpers
    def _find_bodies(self, names) -> torch.Tensor:
        ids, _ = self.robot.find_bodies(tuple(names), preserve_order=True)
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def _find_joints(self, names) -> torch.Tensor:
        ids, _ = self.robot.find_joints(tuple(names), preserve_order=True)
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def _robot_only_model(self) -> mujoco.MjModel:
        # FK needs the bare robot (free joint first), not the scene with terrain and other envs.
        return self._env.cfg.scene.entities[self.cfg.entity_name].spec_fn().compile()

    @staticmethod
    def _frame_offsets(count: int, dt: float, step_dt: float) -> torch.Tensor:
        stride = max(1, round(dt / step_dt))
        return torch.arange(count) * stride

    # ------------------------------------------------------------------ reference
    @property
    def command(self) -> torch.Tensor:
        return torch.cat([self.ref_joint_pos, self.ref_joint_vel], dim=-1)

    @property
    def dataset_clip_ids(self) -> torch.Tensor:
        return self.motion.resident_ids[self.clip_slot]

    @property
    def clip_num_frames(self) -> torch.Tensor:
        return self.motion.clip_num_frames[self.clip_slot]

    @property
    def clip_ended(self) -> torch.Tensor:
        return self.frame >= self.clip_num_frames - 1

    @property
    def has_smpl(self) -> torch.Tensor:
        return self.motion.clip_has_smpl[self.clip_slot]

    def _refresh_reference(self) -> None:
        # One motion-library query for the current frame, the G1 future frames and the SMPL
        # future frames (three separate queries cost three times the gathers).
        state = self.motion.state_at_frames(self.clip_slot[:, None], self.frame[:, None] + self._query_offsets)
        origins = self._env.scene.env_origins[:, None, :]
        now, future, smpl = 0, self._future_rows, self._smpl_rows
        self.ref_joint_pos = state.joint_pos[:, now]
        self.ref_joint_vel = state.joint_vel[:, now]
        self.ref_body_pos_w = state.body_pos_w[:, now] + origins
        self.ref_body_quat_w = state.body_quat_w[:, now]
        self.ref_body_lin_vel_w = state.body_lin_vel_w[:, now]
        self.ref_body_ang_vel_w = state.body_ang_vel_w[:, now]
        self.future_joint_pos = state.joint_pos[:, future]  # (N, F, J)
        self.future_joint_vel = state.joint_vel[:, future]
        self.future_anchor_quat_w = state.body_quat_w[:, future, self.anchor_index]  # (N, F, 4)
        self.smpl_future_joints_w = state.smpl_joints[:, smpl]  # (N, Fs, 24, 3), motion frame
        self.smpl_future_wrist_pos = state.joint_pos[:, smpl][:, :, self.wrist_joint_ids]
        self._derived: dict[str, torch.Tensor] = {}  # reference-only values, computed on first use
        self._update_relative_bodies()

    def _update_relative_bodies(self) -> None:
        """Reference bodies moved onto the robot: anchor xy and heading from the robot, z from the
        reference, so body rewards judge the pose and not the drift."""
        ref_anchor_pos = self.ref_anchor_pos_w
        delta_pos = self.robot_anchor_pos_w.clone()
        delta_pos[:, 2] = ref_anchor_pos[:, 2]
        cos_half, sin_half = relative_yaw_half_angle(self.robot_anchor_quat_w, self.ref_anchor_quat_w)
        offsets, self.ref_body_quat_relative_w = yaw_rotate(
            cos_half, sin_half, self.ref_body_pos_w - ref_anchor_pos[:, None, :], self.ref_body_quat_w
        )
        self.ref_body_pos_relative_w = delta_pos[:, None, :] + offsets

    # ------------------------------------------------------------------ named views for the terms
    # Reference side: ref_joint_pos / ref_joint_vel (N, J) and ref_body_pos_w / ref_body_quat_w /
    # ref_body_lin_vel_w / ref_body_ang_vel_w (N, B, .) hold the reference at each env's frame in
    # the world (env origins added), refreshed once per step; ref_body_pos_relative_w /
    # ref_body_quat_relative_w are the same bodies moved onto the robot's anchor.
    @property
    def ref_anchor_pos_w(self) -> torch.Tensor:
        return self.ref_body_pos_w[:, self.anchor_index]

    @property
    def ref_anchor_quat_w(self) -> torch.Tensor:
        return self.ref_body_quat_w[:, self.anchor_index]

    # Reference-only quantities that several terms read: computed once per reference refresh.
    @property
    def future_joint_state(self) -> torch.Tensor:
        """Future reference joint positions then velocities per frame, (N, F, 2 J)."""
        if "future_joint_state" not in self._derived:
            self._derived["future_joint_state"] = torch.cat([self.future_joint_pos, self.future_joint_vel], dim=-1)
        return self._derived["future_joint_state"]

    @property
    def smpl_future_root_rot(self) -> torch.Tensor:
        """Root frames of the future SMPL keypoints, (N, Fs, 3, 3) (x forward, y left, z up)."""
        if "smpl_future_root_rot" not in self._derived:
            self._derived["smpl_future_root_rot"] = smpl_root_rotation(self.smpl_future_joints_w)
        return self._derived["smpl_future_root_rot"]

    @property
    def ref_vr_points_b(self) -> torch.Tensor:
        """Reference VR points (head, hands) in the reference anchor frame, (N, 3, 3)."""
        if "ref_vr_points_b" not in self._derived:
            self._derived["ref_vr_points_b"] = self.vr_points_in_anchor_frame(self.ref_body_pos_w, self.ref_body_quat_w)
        return self._derived["ref_vr_points_b"]

    def vr_points_in_anchor_frame(self, body_pos_w: torch.Tensor, body_quat_w: torch.Tensor) -> torch.Tensor:
        """VR points of tracked-body poses (N, B, 3/4), expressed in those poses' own anchor frame."""
        quat = body_quat_w[:, self.vr_index]
        offsets = self.vr_offsets[None].expand(quat.shape[0], -1, -1)
        points_w = body_pos_w[:, self.vr_index] + quat_apply(quat, offsets)
        anchor_quat = body_quat_w[:, self.anchor_index, None, :].expand_as(quat)
        return quat_apply_inverse(anchor_quat, points_w - body_pos_w[:, self.anchor_index, None, :])

    @property
    def ref_anchor_height(self) -> torch.Tensor:
        """Reference anchor height above the env's ground origin (N,)."""
        return self.ref_body_pos_w[:, self.anchor_index, 2] - self._env.scene.env_origins[:, 2]

    # Robot side. Tracked bodies are gathered straight from the simulator arrays: the entity's
    # all-body properties cost several times more per call.
    @property
    def robot_body_pos_w(self) -> torch.Tensor:
        return self._sim_data.xpos[:, self._global_body_ids]

    @property
    def robot_body_quat_w(self) -> torch.Tensor:
        return self._sim_data.xquat[:, self._global_body_ids]

    def _robot_body_vel_w(self) -> torch.Tensor:
        root_com = self._sim_data.subtree_com[:, self._root_body_id]
        return compute_velocity_from_cvel(
            self.robot_body_pos_w, root_com[:, None, :], self._sim_data.cvel[:, self._global_body_ids]
        )

    @property
    def robot_body_lin_vel_w(self) -> torch.Tensor:
        return self._robot_body_vel_w()[..., :3]

    @property
    def robot_body_ang_vel_w(self) -> torch.Tensor:
        return self._robot_body_vel_w()[..., 3:]

    @property
    def robot_anchor_pos_w(self) -> torch.Tensor:
        return self._sim_data.xpos[:, self._global_anchor_id]

    @property
    def robot_anchor_quat_w(self) -> torch.Tensor:
        return self._sim_data.xquat[:, self._global_anchor_id]

    @property
    def robot_joint_pos(self) -> torch.Tensor:
        return self.robot.data.joint_pos

    @property
    def robot_joint_vel(self) -> torch.Tensor:
        return self.robot.data.joint_vel

    # ------------------------------------------------------------------ manager hooks
    def _update_metrics(self) -> None:
        self.metrics["error_anchor_pos"] = torch.norm(self.ref_anchor_pos_w - self.robot_anchor_pos_w, dim=-1)
        self.metrics["error_anchor_rot"] = quat_angle_between(self.ref_anchor_quat_w, self.robot_anchor_quat_w)
        self.metrics["error_body_pos"] = torch.norm(
            self.ref_body_pos_relative_w - self.robot_body_pos_w, dim=-1
        ).mean(-1)
        self.metrics["error_body_rot"] = quat_angle_between(self.ref_body_quat_relative_w, self.robot_body_quat_w).mean(-1)
        self.metrics["error_joint_pos"] = torch.norm(self.ref_joint_pos - self.robot_joint_pos, dim=-1)
        self.metrics["error_joint_vel"] = torch.norm(self.ref_joint_vel - self.robot_joint_vel, dim=-1)

    def _resample_command(self, env_ids: torch.Tensor) -> None:
        self._record_failures(env_ids)
        self._sample_starts(env_ids)
        self.encoder_mask[env_ids] = sample_encoder_masks(
            self.encoder_probs,
            has_smpl=self.motion.clip_has_smpl[self.clip_slot[env_ids]],
            smpl_column=self._encoder_column("smpl"),
            g1_column=self._encoder_column("g1"),
            teleop_column=self._encoder_column("teleop"),
            teleop_prob_when_smpl=self.cfg.teleop_prob_when_smpl,
        )
        self._write_reference_state(env_ids)
        self._hold[env_ids] = True

    def _encoder_column(self, name: str) -> int | None:
        return self.encoder_names.index(name) if name in self.encoder_names else None

    def _record_failures(self, env_ids: torch.Tensor) -> None:
        if self._skip_failure_record:
            self._skip_failure_record = False
            return
        if self.cfg.sampling_mode != "adaptive" or not hasattr(self._env, "termination_manager"):
            return
        failed = self._env.termination_manager.terminated[env_ids]
        self.sampler.record_failures(self.dataset_clip_ids[env_ids], self.frame[env_ids], failed)

    def _sample_starts(self, env_ids: torch.Tensor) -> None:
        num = len(env_ids)
        if self.cfg.sampling_mode == "adaptive":
            slots, frames = self.sampler.sample_starts(self.motion.resident_ids, num)
        else:
            slots = torch.randint(0, self.motion.num_clips, (num,), device=self.device)
            if self.cfg.sampling_mode == "start":
                frames = torch.zeros(num, dtype=torch.long, device=self.device)
            else:
                frames = (torch.rand(num, device=self.device) * (self.motion.clip_num_frames[slots] - 1)).long()
        self.clip_slot[env_ids] = slots
        self.frame[env_ids] = torch.minimum(frames, self.motion.clip_num_frames[slots] - 2).clamp_min(0)

    def _write_reference_state(self, env_ids: torch.Tensor) -> None:
        """Reference state initialisation with the configured perturbations."""
        state = self.motion.state_at_frames(self.clip_slot[env_ids], self.frame[env_ids])
        num = len(env_ids)
        root_pos = state.body_pos_w[:, 0] + self._env.scene.env_origins[env_ids]
        root_quat = state.body_quat_w[:, 0]
        pose = self._sample_ranges(self._pose_bounds, num)
        root_pos = root_pos + pose[:, :3]
        root_quat = quat_mul(quat_from_euler_xyz(pose[:, 3], pose[:, 4], pose[:, 5]), root_quat)
        vel = self._sample_ranges(self._velocity_bounds, num)
        root_lin_vel = state.body_lin_vel_w[:, 0] + vel[:, :3]
        root_ang_vel = state.body_ang_vel_w[:, 0] + vel[:, 3:]
        low, high = self.cfg.joint_position_range
        joint_pos = state.joint_pos + sample_uniform(low, high, state.joint_pos.shape, device=self.device)
        limits = self.robot.data.soft_joint_pos_limits[env_ids]
        joint_pos = torch.clip(joint_pos, limits[..., 0], limits[..., 1])
        self.robot.write_joint_state_to_sim(joint_pos, state.joint_vel, env_ids=env_ids)
        root_state = torch.cat([root_pos, root_quat, root_lin_vel, root_ang_vel], dim=-1)
        self.robot.write_root_state_to_sim(root_state, env_ids=env_ids)
        self.robot.reset(env_ids=env_ids)

    def _range_bounds(self, ranges: dict[str, tuple[float, float]] | None) -> torch.Tensor:
        """(6, 2) low/high per x, y, z, roll, pitch, yaw; missing keys do not perturb."""
        ranges = ranges or {}
        return torch.tensor([ranges.get(k, (0.0, 0.0)) for k in _POSE_KEYS], device=self.device)

    def _sample_ranges(self, bounds: torch.Tensor, num: int) -> torch.Tensor:
        return sample_uniform(bounds[:, 0], bounds[:, 1], (num, 6), device=self.device)

    def _update_command(self, env_ids: torch.Tensor | None = None) -> None:
        if env_ids is None:  # inside env.step: advance every env not reset during this step
            self.frame += (~self._hold).long()
            self.frame.copy_(torch.minimum(self.frame, self.clip_num_frames - 1))
            self._hold.zero_()
            if self.cfg.sampling_mode == "adaptive":
                self.sampler.record_step(self.dataset_clip_ids, self.frame)
        else:  # env.reset(): the envs start at their sampled frame and advance from the next step
            self._hold[env_ids] = False
        self._refresh_reference()

    def start_clips(self, env_ids: torch.Tensor, slots: torch.Tensor, frames: torch.Tensor) -> None:
        """Put envs exactly on given resident clips and frames (replay, evaluation): no noise.

        Called between env steps, so the next `env.step` advances these envs to `frames + 1`
        like every other env; only resets inside a step hold their frame for that step.
        """
        self.clip_slot[env_ids] = slots
        self.frame[env_ids] = frames
        state = self.motion.state_at_frames(slots, frames)
        root = torch.cat([state.body_pos_w[:, 0] + self._env.scene.env_origins[env_ids], state.body_quat_w[:, 0],
                          state.body_lin_vel_w[:, 0], state.body_ang_vel_w[:, 0]], dim=-1)
        self.robot.write_joint_state_to_sim(state.joint_pos, state.joint_vel, env_ids=env_ids)
        self.robot.write_root_state_to_sim(root, env_ids=env_ids)
        self.robot.reset(env_ids=env_ids)
        self._hold[env_ids] = False
        self._env.sim.forward()
        self._refresh_reference()

    # ------------------------------------------------------------------ resident clips
    def resample_resident_clips(self) -> None:
        """Draw a new resident clip subset (weighted by bin failure rates).

        Every env's clip slot now points into the new subset, so the caller must reset all envs
        (`ManagerEnvWrapper.resample_motions` does): that reset starts them on the new clips.
        The episodes it cuts short are not failures, so it records none.
        """
        weights = self.sampler.clip_probabilities() if self.cfg.sampling_mode == "adaptive" else None
        self.motion.sample_resident(weights)
        self._skip_failure_record = True

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        return {"adaptive_sampling": self.sampler.state_dict(), "motion_keys": list(self.motion.keys)}

    def load_state_dict(self, state: dict) -> None:
        if list(state["motion_keys"]) != list(self.motion.keys):
            raise ValueError(
                "adaptive sampling state belongs to another motion set "
                f"({len(state['motion_keys'])} clips vs {len(self.motion.keys)} loaded): "
                "resume with the same commands.motion.motion_file and filters"
            )
        self.sampler.load_state_dict(state["adaptive_sampling"])
