"""Each ONNX input built from MuJoCo state + the motion reference, following the contract.

A term function takes an `ObsContext` (the robot in MjData, the reference at the current frame)
and returns one step of that term, shaped as the contract says; `ObservationBuilder` applies
clip and scale, keeps per-term history (oldest first, filled with the first step at a reset,
like mjlab's history buffer) and concatenates groups. Names match the env's term functions
(gear_sonic/envs/manager_env/mdp/observations.py and mjlab's), so the contract maps 1:1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from gear_sonic.deploy.contract import DeployContract, ObsGroup, ObsTerm
from gear_sonic.deploy.errors import DeployInputError
from gear_sonic.deploy.motion import ReferenceMotion
from gear_sonic.utils.np_quat import (
    matrix_from_quat,
    quat_apply,
    quat_apply_inverse,
    quat_inv,
    quat_mul,
    rotation_6d,
    rotation_6d_from_matrix,
)

GRAVITY_DIR = np.array([0.0, 0.0, -1.0])


def smpl_root_rotation(joints: np.ndarray) -> np.ndarray:
    """Root frame of SMPL keypoints (..., 24, 3) -> (..., 3, 3): columns x fwd, y left, z up."""
    pelvis, left_hip, right_hip, spine = (joints[..., i, :] for i in range(4))
    y_axis = _unit(left_hip - right_hip)
    x_axis = _unit(np.cross(y_axis, spine - pelvis))
    z_axis = np.cross(x_axis, y_axis)
    return np.stack([x_axis, y_axis, z_axis], axis=-1)


def _unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


class RobotView:
    """Named reads of one robot in MjData (the env's `robot.data` equivalents)."""

    def __init__(self, model: mujoco.MjModel, contract: DeployContract):
        self.model = model
        prefix = contract.model_name_prefix
        joint_ids = [_lookup(model, mujoco.mjtObj.mjOBJ_JOINT, prefix + n, contract)
                     for n in contract.joint_names]
        self.qpos_adr = model.jnt_qposadr[joint_ids]
        self.qvel_adr = model.jnt_dofadr[joint_ids]
        self.root_body = int(model.jnt_bodyid[_free_joint(model, contract)])
        self.body_ids = np.array([_lookup(model, mujoco.mjtObj.mjOBJ_BODY, prefix + n, contract)
                                  for n in contract.command["body_names"]])
        self.anchor_index = contract.command["body_names"].index(contract.command["anchor_body"])
        self.data: mujoco.MjData | None = None

    def bind(self, data: mujoco.MjData) -> RobotView:
        self.data = data
        return self

    @property
    def root_pos_w(self):
        return self.data.xpos[self.root_body]

    @property
    def root_quat_w(self):
        return self.data.xquat[self.root_body]

    @property
    def root_lin_vel_w(self):
        cvel = self.data.cvel[self.root_body]
        offset = self.data.subtree_com[self.root_body] - self.data.xpos[self.root_body]
        return cvel[3:6] - np.cross(cvel[0:3], offset)

    @property
    def root_ang_vel_w(self):
        return self.data.cvel[self.root_body, 0:3]

    @property
    def joint_pos(self):
        return self.data.qpos[self.qpos_adr]

    @property
    def joint_vel(self):
        return self.data.qvel[self.qvel_adr]

    @property
    def body_pos_w(self):
        return self.data.xpos[self.body_ids]

    @property
    def body_quat_w(self):
        return self.data.xquat[self.body_ids]

    @property
    def anchor_pos_w(self):
        return self.data.xpos[self.body_ids[self.anchor_index]]

    @property
    def anchor_quat_w(self):
        return self.data.xquat[self.body_ids[self.anchor_index]]


@dataclass
class ObsContext:
    """What the terms read at one control step."""

    robot: RobotView
    motion: ReferenceMotion | None  # None for a velocity-command policy
    frame: int
    last_action: np.ndarray
    contract: DeployContract
    encoder_index: np.ndarray
    velocity_command: np.ndarray | None = None  # (vx, vy, wz) of a locomotion policy
    goal_w: np.ndarray | None = None  # (x, y) world goal of a goal-reaching (balance) policy

    def ref_at(self, offsets) -> np.ndarray:
        return self.motion.clamp(self.frame + np.asarray(offsets, dtype=np.int64))

    @property
    def ref_anchor_index(self) -> int:
        return self.robot.anchor_index

    def joint_ids(self, names_key: str) -> np.ndarray:
        names = self.contract.joint_names
        return np.array([names.index(n) for n in self.contract.command[names_key]])


# ---------------------------------------------------------------- proprioception
def projected_gravity(ctx: ObsContext) -> np.ndarray:
    return quat_apply_inverse(ctx.robot.root_quat_w, GRAVITY_DIR)


def base_ang_vel(ctx: ObsContext) -> np.ndarray:
    return quat_apply_inverse(ctx.robot.root_quat_w, ctx.robot.root_ang_vel_w)


def base_lin_vel(ctx: ObsContext) -> np.ndarray:
    return quat_apply_inverse(ctx.robot.root_quat_w, ctx.robot.root_lin_vel_w)


def joint_pos_rel(ctx: ObsContext) -> np.ndarray:
    # `biased` adds a simulated encoder bias, zero outside training randomisation.
    return ctx.robot.joint_pos - ctx.contract.default_joint_pos


def joint_vel_rel(ctx: ObsContext) -> np.ndarray:
    return ctx.robot.joint_vel.copy()


def last_action(ctx: ObsContext) -> np.ndarray:
    return ctx.last_action.copy()


# ---------------------------------------------------------------- reference (tracking command)
def _future(ctx: ObsContext, key: str = "future_frame_offsets") -> np.ndarray:
    return ctx.ref_at(ctx.contract.command[key])


def command_multi_future_nonflat(ctx: ObsContext) -> np.ndarray:
    frames = _future(ctx)
    return np.concatenate([ctx.motion.joint_pos[frames], ctx.motion.joint_vel[frames]], axis=-1)


def command_multi_future(ctx: ObsContext) -> np.ndarray:
    return command_multi_future_nonflat(ctx).reshape(-1)


def command_multi_future_lower_body(ctx: ObsContext) -> np.ndarray:
    frames, ids = _future(ctx), ctx.joint_ids("lower_body_joint_names")
    pos = ctx.motion.joint_pos[frames][:, ids]
    vel = ctx.motion.joint_vel[frames][:, ids]
    return np.concatenate([pos, vel], axis=-1).reshape(-1)


def _ref_anchor(ctx: ObsContext, frames) -> tuple[np.ndarray, np.ndarray]:
    a = ctx.ref_anchor_index
    return ctx.motion.body_pos_w[frames, a], ctx.motion.body_quat_w[frames, a]


def motion_anchor_pos_b(ctx: ObsContext) -> np.ndarray:
    pos, _ = _ref_anchor(ctx, ctx.frame)
    return quat_apply_inverse(ctx.robot.anchor_quat_w, pos - ctx.robot.anchor_pos_w)


def motion_anchor_ori_b(ctx: ObsContext) -> np.ndarray:
    _, quat = _ref_anchor(ctx, ctx.frame)
    return rotation_6d(quat_mul(quat_inv(ctx.robot.anchor_quat_w), quat))


def motion_anchor_ori_b_mf_nonflat(ctx: ObsContext) -> np.ndarray:
    _, future = _ref_anchor(ctx, _future(ctx))
    inverse = np.broadcast_to(quat_inv(ctx.robot.anchor_quat_w), future.shape)
    return rotation_6d(quat_mul(inverse, future))


def robot_body_pos_b(ctx: ObsContext) -> np.ndarray:
    rel = ctx.robot.body_pos_w - ctx.robot.anchor_pos_w
    anchor = np.broadcast_to(ctx.robot.anchor_quat_w, (len(rel), 4))
    return quat_apply_inverse(anchor, rel).reshape(-1)


def robot_body_ori_b(ctx: ObsContext) -> np.ndarray:
    bodies = ctx.robot.body_quat_w
    inverse = np.broadcast_to(quat_inv(ctx.robot.anchor_quat_w), bodies.shape)
    return rotation_6d(quat_mul(inverse, bodies)).reshape(-1)


def _vr_index(ctx: ObsContext) -> list[int]:
    bodies = ctx.contract.command["body_names"]
    return [bodies.index(n) for n in ctx.contract.command["vr_body_names"]]


def vr_3point_local_target(ctx: ObsContext) -> np.ndarray:
    pos, quat = ctx.motion.body_pos_w[ctx.frame], ctx.motion.body_quat_w[ctx.frame]
    vr, a = _vr_index(ctx), ctx.ref_anchor_index
    offsets = np.asarray(ctx.contract.command["vr_body_offsets"], np.float32)
    points = pos[vr] + quat_apply(quat[vr], offsets)
    anchor = np.broadcast_to(quat[a], quat[vr].shape)
    return quat_apply_inverse(anchor, points - pos[a]).reshape(-1)


def vr_3point_local_orn_target(ctx: ObsContext) -> np.ndarray:
    quat = ctx.motion.body_quat_w[ctx.frame]
    vr = quat[_vr_index(ctx)]
    anchor = np.broadcast_to(quat[ctx.ref_anchor_index], vr.shape)
    return quat_mul(quat_inv(anchor), vr).reshape(-1)


def _smpl_future(ctx: ObsContext) -> np.ndarray:
    if ctx.motion.smpl_joints is None:
        raise DeployInputError(ctx.motion.name, "has no smpl_joints for the smpl encoder",
                               "use a clip with smpl_joints or --encoder g1 / teleop")
    return ctx.motion.smpl_joints[_future(ctx, "smpl_future_frame_offsets")]


def smpl_joints_multi_future_local_nonflat(ctx: ObsContext) -> np.ndarray:
    joints = _smpl_future(ctx)  # (F, 24, 3)
    rel = joints - joints[:, :1, :]
    return (rel @ smpl_root_rotation(joints)).reshape(len(joints), -1)


def smpl_root_ori_b_multi_future(ctx: ObsContext) -> np.ndarray:
    robot_rot_t = matrix_from_quat(ctx.robot.anchor_quat_w).T
    return rotation_6d_from_matrix(robot_rot_t[None] @ smpl_root_rotation(_smpl_future(ctx)))


def joint_pos_multi_future_wrist_for_smpl(ctx: ObsContext) -> np.ndarray:
    frames = _future(ctx, "smpl_future_frame_offsets")
    return ctx.motion.joint_pos[frames][:, ctx.joint_ids("wrist_joint_names")]


def encoder_index(ctx: ObsContext) -> np.ndarray:
    return ctx.encoder_index


# ---------------------------------------------------------------- velocity command, model facts
def generated_commands(ctx: ObsContext) -> np.ndarray:
    if ctx.velocity_command is None:
        raise DeployInputError(str(ctx.contract.directory / "metadata.json"), "the policy reads "
                               "a velocity command", "pass --command vx,vy,wz or --commands FILE")
    return ctx.velocity_command


def goal_position_b(ctx: ObsContext, max_distance: float = 5.0,
                    asset_cfg: dict | None = None) -> np.ndarray:
    """Goal minus base position in the base yaw frame, norm clipped at max_distance (the
    balance task's term; asset_cfg names the robot, whose root body is read)."""
    if ctx.goal_w is None:
        raise DeployInputError(str(ctx.contract.directory / "metadata.json"), "the policy "
                               "walks to a goal", "pass --goal x,y")
    delta = np.asarray(ctx.goal_w, np.float64) - ctx.robot.root_pos_w[:2]
    forward = quat_apply(ctx.robot.root_quat_w, np.array([1.0, 0.0, 0.0]))
    heading = np.arctan2(forward[1], forward[0])
    cos, sin = np.cos(heading), np.sin(heading)
    local = np.array([cos * delta[0] + sin * delta[1], -sin * delta[0] + cos * delta[1]])
    norm = max(float(np.linalg.norm(local)), 1e-6)
    return local * (min(norm, float(max_distance)) / norm)


def geom_friction(ctx: ObsContext, asset_cfg: dict) -> np.ndarray:
    """Sliding friction of the named geoms (what the simulator knows; a privileged term)."""
    ids = _named_ids(ctx, mujoco.mjtObj.mjOBJ_GEOM, asset_cfg["geom_names"])
    return ctx.robot.model.geom_friction[ids, 0]


def body_mass(ctx: ObsContext, asset_cfg: dict) -> np.ndarray:
    ids = _named_ids(ctx, mujoco.mjtObj.mjOBJ_BODY, asset_cfg["body_names"])
    return ctx.robot.model.body_mass[ids]


def _named_ids(ctx: ObsContext, kind, names: list[str]) -> list[int]:
    prefix = ctx.contract.model_name_prefix
    return [_lookup(ctx.robot.model, kind, prefix + n, ctx.contract) for n in names]


TERMS: dict[str, Callable[[ObsContext], np.ndarray]] = {
    f.__name__: f for f in (
        projected_gravity, base_ang_vel, base_lin_vel, joint_pos_rel, joint_vel_rel, last_action,
        command_multi_future_nonflat, command_multi_future, command_multi_future_lower_body,
        motion_anchor_pos_b, motion_anchor_ori_b, motion_anchor_ori_b_mf_nonflat,
        robot_body_pos_b, robot_body_ori_b, vr_3point_local_target, vr_3point_local_orn_target,
        smpl_joints_multi_future_local_nonflat, smpl_root_ori_b_multi_future,
        joint_pos_multi_future_wrist_for_smpl, encoder_index, generated_commands,
        goal_position_b, geom_friction, body_mass,
    )
}
# Terms that read their params (entity selections exported as names by onnx_export).
TERMS_WITH_PARAMS = ("geom_friction", "body_mass", "goal_position_b")


class ObservationBuilder:
    """Builds the named inputs of one ONNX model, step after step."""

    def __init__(self, contract: DeployContract, input_names: list[str]):
        self.contract = contract
        self.input_names = list(input_names)
        self._plan: dict[str, tuple[ObsGroup | None, ObsTerm | None]] = {}
        for name in self.input_names:
            group = contract.groups.get(name)
            if group is not None and group.concatenate:
                terms = group.terms
                self._plan[name] = (group, None)
            else:
                terms = (contract.term(name),)
                self._plan[name] = (None, terms[0])
            unknown = [t.func for t in terms if t.func not in TERMS]
            if unknown:
                raise DeployInputError(
                    str(contract.directory / "metadata.json"),
                    f"input {name!r} needs observation functions {unknown} the deploy loop "
                    "does not implement", f"implement them in {__name__} (known: {sorted(TERMS)})")
        self._history: dict[int, deque] = {}

    def reset(self) -> None:
        """Forget history: the next `compute` fills every history slot with its first step."""
        self._history.clear()

    def compute(self, ctx: ObsContext) -> dict[str, np.ndarray]:
        """{input name: (1, ...) float32} for the current step; advances history once."""
        feeds = {}
        for name in self.input_names:
            group, term = self._plan[name]
            if group is None:
                feeds[name] = self._term(term, ctx)[None]
            else:
                parts = [self._term(t, ctx).reshape(-1) for t in group.terms]
                feeds[name] = np.concatenate(parts)[None]
        return feeds

    def _term(self, term: ObsTerm, ctx: ObsContext) -> np.ndarray:
        # A copy: history keeps this step, and terms may return live views (last action).
        params = term.params if term.func in TERMS_WITH_PARAMS else {}
        value = np.array(TERMS[term.func](ctx, **params), dtype=np.float32).reshape(term.shape)
        if term.clip is not None:
            value = np.clip(value, term.clip[0], term.clip[1])
        if term.scale is not None:
            value = value * term.scale
        if term.history_length <= 0:
            return value
        buffer = self._history.get(id(term))
        if buffer is None:
            buffer = self._history[id(term)] = deque([value] * term.history_length,
                                                maxlen=term.history_length)
        else:
            buffer.append(value)
        return np.stack(buffer).reshape(-1)


def _lookup(model, kind, name: str, contract: DeployContract) -> int:
    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        what = {mujoco.mjtObj.mjOBJ_JOINT: "joint", mujoco.mjtObj.mjOBJ_GEOM: "geom"}.get(
            kind, "body")
        raise DeployInputError(
            str(contract.directory / "metadata.json"),
            f"{what} {name!r} is not in the MuJoCo model (robot {contract.robot!r})",
            "metadata.json and the model file must come from the same robot: re-export both")
    return index


def _free_joint(model, contract: DeployContract) -> int:
    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    if len(free) != 1:
        raise DeployInputError(str(contract.directory), f"the MuJoCo model has {len(free)} "
                               "free joints", "deploy a floating-base robot model")
    return free[0]
