"""Forward kinematics of a MuJoCo robot with a free root, for motion clips (CPU, load time)."""

from __future__ import annotations

import mujoco
import numpy as np

from gear_sonic.utils.np_quat import angular_velocity, linear_velocity

from .errors import MotionDataError

_ACTUATED_JOINT_TYPES = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)


class RobotKinematics:
    """Body poses from root pose + joint positions, via mujoco.mj_kinematics.

    `joint_names`: hinge/slide joints in XML order (the free joint excluded).
    `body_names`: all bodies except the world body, in XML order.
    """

    def __init__(self, mj_model: mujoco.MjModel):
        self.model = mj_model
        self.data = mujoco.MjData(mj_model)
        joint_types = mj_model.jnt_type
        free = [j for j in range(mj_model.njnt) if joint_types[j] == mujoco.mjtJoint.mjJNT_FREE]
        if len(free) != 1:
            raise MotionDataError(
                f"robot model has {len(free)} free joints, expected exactly 1 (the root)",
                field="mj_model", fix="use a floating-base robot model",
            )
        others = [j for j in range(mj_model.njnt) if j != free[0]]
        unsupported = [mj_model.joint(j).name for j in others
                       if mj_model.jnt_type[j] not in _ACTUATED_JOINT_TYPES]
        if unsupported:
            raise MotionDataError(
                f"robot model has ball joints {unsupported}, which motion clips cannot describe",
                field="mj_model", fix="use a model with hinge/slide joints only",
            )
        self._root_qpos_adr = int(mj_model.jnt_qposadr[free[0]])
        self._joint_qpos_adr = np.array([mj_model.jnt_qposadr[j] for j in others], dtype=int)
        self.joint_names: list[str] = [mj_model.joint(j).name for j in others]
        self.body_names: list[str] = [mj_model.body(b).name for b in range(1, mj_model.nbody)]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    def forward(
        self, root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T,3), (T,4) wxyz, (T,J) in `joint_names` order -> body pos (T,B,3), quat (T,B,4)."""
        num_frames = joint_pos.shape[0]
        if joint_pos.shape[1] != self.num_joints:
            raise MotionDataError(
                f"forward() got {joint_pos.shape[1]} joint columns, robot has {self.num_joints}",
                field="joint_pos", fix="map joints to the robot order first",
            )
        body_pos = np.empty((num_frames, self.num_bodies, 3))
        body_quat = np.empty((num_frames, self.num_bodies, 4))
        qpos = self.data.qpos
        root = self._root_qpos_adr
        for t in range(num_frames):
            qpos[root:root + 3] = root_pos[t]
            qpos[root + 3:root + 7] = root_quat[t]
            qpos[self._joint_qpos_adr] = joint_pos[t]
            mujoco.mj_kinematics(self.model, self.data)
            body_pos[t] = self.data.xpos[1:]
            body_quat[t] = self.data.xquat[1:]
        return body_pos, body_quat

    @staticmethod
    def velocities(
        body_pos: np.ndarray, body_quat: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """World-frame body linear and angular velocity by finite differences over `times`."""
        return linear_velocity(body_pos, times), angular_velocity(body_quat, times)
