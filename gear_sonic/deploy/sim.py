"""The robot in plain MuJoCo: model loading, PD gains from the contract, reset, stepping.

The model is the env's compiled scene saved beside the ONNX files (robot.mjb: robot, floor,
actuators, solver options) or a model file given on the command line. Joints are position
actuators (MuJoCo's implicit PD); their gains are set from metadata.json so the contract, not
the model file, decides kp / kd.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from gear_sonic.deploy.contract import DeployContract
from gear_sonic.deploy.errors import DeployInputError
from gear_sonic.deploy.motion import ReferenceMotion
from gear_sonic.deploy.observations import RobotView
from gear_sonic.utils.np_quat import quat_apply_inverse


def load_model(contract: DeployContract, model_path: str | Path | None = None) -> mujoco.MjModel:
    path = Path(model_path) if model_path else (
        contract.directory / contract.model_file if contract.model_file else None)
    if path is None or not path.is_file():
        raise DeployInputError(str(path or contract.directory / "robot.mjb"), "no MuJoCo model",
                               "export the deploy bundle (it writes robot.mjb) or pass --model")
    try:
        if path.suffix == ".mjb":
            return mujoco.MjModel.from_binary_path(str(path))
        return mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:  # mujoco raises ValueError / RuntimeError variants
        raise DeployInputError(str(path), f"cannot be loaded by MuJoCo ({exc})",
                               "pass a valid .mjb or MJCF file") from exc


class MujocoRobot:
    """One robot simulated at the contract's physics rate, driven by joint-position targets."""

    def __init__(self, model: mujoco.MjModel, contract: DeployContract):
        self.model, self.contract = model, contract
        self.data = mujoco.MjData(model)
        self._check_same_robot()
        self.view = RobotView(model, contract).bind(self.data)
        model.opt.timestep = contract.physics_dt
        self.actuators = self._actuator_per_joint()
        self._set_gains()
        free = next(j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE)
        self.root_qpos = int(model.jnt_qposadr[free])
        self.root_qvel = int(model.jnt_dofadr[free])

    def _check_same_robot(self) -> None:
        hinges = [self.model.joint(j).name for j in range(self.model.njnt)
                  if self.model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
        prefix = self.contract.model_name_prefix
        expected = [prefix + n for n in self.contract.joint_names]
        if hinges != expected:
            raise DeployInputError(
                str(self.contract.directory / "metadata.json"),
                f"robot {self.contract.robot!r} ({len(expected)} joints) does not match the MuJoCo "
                f"model's {len(hinges)} joints", "export metadata.json and the model together, "
                "or pass --model with this robot's model")

    def _actuator_per_joint(self) -> np.ndarray:
        by_joint = {}
        for a in range(self.model.nu):
            if self.model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
                by_joint[int(self.model.actuator_trnid[a, 0])] = a
        joint_ids = [self.model.joint(self.contract.model_name_prefix + n).id
                     for n in self.contract.joint_names]
        missing = [n for n, j in zip(self.contract.joint_names, joint_ids) if j not in by_joint]
        if missing:
            raise DeployInputError(str(self.contract.directory), f"joints {missing[:4]} have no "
                                   "actuator in the MuJoCo model", "use the exported robot.mjb")
        return np.array([by_joint[j] for j in joint_ids])

    def _set_gains(self) -> None:
        ids = self.actuators
        affine = self.model.actuator_biastype[ids] == mujoco.mjtBias.mjBIAS_AFFINE
        if not affine.all():
            raise DeployInputError(str(self.contract.directory), "the model's actuators are not "
                                   "position actuators", "use the exported robot.mjb")
        self.model.actuator_gainprm[ids, 0] = self.contract.kp
        self.model.actuator_biasprm[ids, 1] = -self.contract.kp
        self.model.actuator_biasprm[ids, 2] = -self.contract.kd

    def reset_to(self, motion: ReferenceMotion, frame: int = 0) -> None:
        """Put the robot exactly on the reference (root = first tracked body), like the env's
        evaluation start: joint and root positions and velocities from the clip."""
        mujoco.mj_resetData(self.model, self.data)
        quat = motion.body_quat_w[frame, 0].astype(np.float64)
        self.data.qpos[self.root_qpos:self.root_qpos + 3] = motion.body_pos_w[frame, 0]
        self.data.qpos[self.root_qpos + 3:self.root_qpos + 7] = quat
        self.data.qvel[self.root_qvel:self.root_qvel + 3] = motion.body_lin_vel_w[frame, 0]
        self.data.qvel[self.root_qvel + 3:self.root_qvel + 6] = quat_apply_inverse(
            quat, motion.body_ang_vel_w[frame, 0].astype(np.float64))
        self.data.qpos[self.view.qpos_adr] = motion.joint_pos[frame]
        self.data.qvel[self.view.qvel_adr] = motion.joint_vel[frame]
        self.data.ctrl[self.actuators] = motion.joint_pos[frame]
        mujoco.mj_forward(self.model, self.data)
        self.stale_body_pos = self.data.xpos[self.view.body_ids].copy()
        self.stale_body_quat = self.data.xquat[self.view.body_ids].copy()

    def reset_default(self) -> None:
        """The robot at rest in its default pose (a velocity-command policy's start): root
        state and joint positions from metadata.json, zero velocities."""
        mujoco.mj_resetData(self.model, self.data)
        root = np.asarray(self.contract.raw.get("default_root_state") or
                          [0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0], np.float64)
        self.data.qpos[self.root_qpos:self.root_qpos + 7] = root[:7]
        self.data.qpos[self.view.qpos_adr] = self.contract.default_joint_pos
        self.data.ctrl[self.actuators] = self.contract.default_joint_pos
        mujoco.mj_forward(self.model, self.data)
        self.stale_body_pos = self.data.xpos[self.view.body_ids].copy()
        self.stale_body_quat = self.data.xquat[self.view.body_ids].copy()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    def step(self, joint_targets: np.ndarray) -> None:
        """One control step: hold the targets for `decimation` physics steps, then refresh the
        derived quantities (xpos, cvel) from the new qpos like the env does before observing."""
        self.data.ctrl[self.actuators] = joint_targets
        for _ in range(self.contract.decimation):
            mujoco.mj_step(self.model, self.data)
        # Tracked-body poses as mj_step left them (one physics step old): what the env's
        # terminations read, since its forward() runs after them.
        ids = self.view.body_ids
        self.stale_body_pos = self.data.xpos[ids].copy()
        self.stale_body_quat = self.data.xquat[ids].copy()
        mujoco.mj_forward(self.model, self.data)
