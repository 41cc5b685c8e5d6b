"""Dynamic sanity check: track a clip in plain MuJoCo with feedforward + PD joint torques.

The robot starts on frame 0 and only its joints are actuated (the floating base
is free), so a clip can only be followed if it is balanced. Joint torques are
inverse dynamics of the reference, with the contact wrenches that the stance
feet must supply (shared between the feet in double stance by shifting load),
plus PD feedback from position actuators (implicit integration) with mjlab's G1
effort limits and armature. mjlab's gains are scaled up by GAIN_SCALE: at their
nominal values the ankles (28.5 Nm/rad) are softer than the body's gravitational
stiffness about them (~100 Nm/rad per ankle), so without a policy adding balance
feedback even the static default pose drifts over within ~3 s (within ~1 s
without the feedforward, as the joints also sag). Policy training in mjlab
remains the definitive test.
"""

from __future__ import annotations

import re

import mujoco
import numpy as np
from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_ARTICULATION

from .checks import finite_difference_qvel
from .robot import FOOT_SITES, build_spec, joint_names, qpos_from_parts

# Clips that must be tracked to the end. Stepping clips are replayed too, for
# information only: open-loop tracking without balance feedback drifts within
# a few steps, as expected; correcting that is the tracking policy's job.
SIM_CHECKED_CLIPS = ("stand_idle", "squat", "wave_right_hand", "reach_forward")
PHYSICS_DT = 0.002
MAX_PELVIS_ERROR = 0.05  # m, pelvis drift from the reference
MAX_TILT = 0.2  # rad, pelvis tilt away from the reference
GAIN_SCALE = 6.0
MOMENT_ARM = 0.03  # m, scale that makes foot moments comparable with forces


def pd_parameters(names: list[str]) -> dict[str, np.ndarray]:
    """Stiffness, damping, effort limit and armature per joint from mjlab's actuator config."""
    params = {key: np.zeros(len(names)) for key in ("kp", "kd", "effort", "armature")}
    for actuator in G1_ARTICULATION.actuators:
        for pattern in actuator.target_names_expr:
            for i, name in enumerate(names):
                if re.fullmatch(pattern, name):
                    params["kp"][i] = actuator.stiffness
                    params["kd"][i] = actuator.damping
                    params["effort"][i] = actuator.effort_limit
                    params["armature"][i] = actuator.armature
    return params


def sim_model(with_floor: bool) -> mujoco.MjModel:
    """G1 with one position actuator per hinge joint (ctrl = target angle)."""
    spec = build_spec(with_floor=with_floor)
    names = joint_names(spec.compile())
    pd = pd_parameters(names)
    for i, name in enumerate(names):
        kp, kd = GAIN_SCALE * pd["kp"][i], GAIN_SCALE * pd["kd"][i]
        spec.add_actuator(
            name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[kp] + [0.0] * 9,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE, biasprm=[0.0, -kp, -kd] + [0.0] * 7,
            forcelimited=True, forcerange=[-pd["effort"][i], pd["effort"][i]],
        )
    model = spec.compile()
    model.opt.timestep = PHYSICS_DT
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    model.dof_armature[6:] = pd["armature"]
    return model


def reference_states(model: mujoco.MjModel, qpos: np.ndarray,
                     dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised velocities and accelerations of a qpos trajectory (central differences)."""
    qvel = finite_difference_qvel(model, qpos, dt)
    return qvel, np.gradient(qvel, dt, axis=0)


def foot_jacobians(model: mujoco.MjModel, data: mujoco.MjData) -> list[np.ndarray]:
    """6 x nv Jacobians (linear, angular) of the foot sites."""
    jacs = []
    for site in FOOT_SITES:
        jac = np.zeros((6, model.nv))
        mujoco.mj_jacSite(model, data, jac[:3], jac[3:], model.site(site).id)
        jacs.append(jac)
    return jacs


def split_contact_wrench(base_map: np.ndarray, base_force: np.ndarray) -> np.ndarray:
    """Foot wrenches (force, moment per foot) that produce `base_force` on the floating base.

    Among all solutions of base_map @ w = base_force, take the one with the least
    weighted norm, moments penalised as forces acting MOMENT_ARM away: the load is
    shared by shifting vertical force between the feet (as a person does) rather
    than by large ankle moments that would push the centre of pressure off the sole.
    """
    per_foot = np.r_[np.ones(3), np.full(3, MOMENT_ARM**2)]
    inv_weight = np.tile(per_foot, base_map.shape[1] // 6)
    gram = (base_map * inv_weight) @ base_map.T
    return inv_weight * (base_map.T @ np.linalg.solve(gram, base_force))


def feedforward_torques(qpos: np.ndarray, qvel: np.ndarray, qacc: np.ndarray,
                        contact: np.ndarray) -> np.ndarray:
    """Joint torques of the reference motion with the feet supplying the base wrench."""
    model = sim_model(with_floor=False)
    data = mujoco.MjData(model)
    torques = np.zeros((len(qpos), model.nv - 6))
    for k in range(len(qpos)):
        data.qpos[:], data.qvel[:], data.qacc[:] = qpos[k], qvel[k], qacc[k]
        mujoco.mj_inverse(model, data)
        required = data.qfrc_inverse.copy()
        jacs = [j for j, on in zip(foot_jacobians(model, data), contact[k]) if on]
        if jacs:
            jac = np.vstack(jacs)
            required -= jac.T @ split_contact_wrench(jac[:, :6].T, required[:6])
        torques[k] = required[6:]
    return torques


def tilt_angle(quat_a: np.ndarray, quat_b: np.ndarray) -> float:
    """Angle between the z axes of two orientations (wxyz)."""
    def z_axis(q):
        w, x, y, z = q
        return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    return float(np.arccos(np.clip(z_axis(quat_a) @ z_axis(quat_b), -1.0, 1.0)))


def track_clip(clip: dict) -> dict:
    """Simulate the clip; report pelvis drift, tilt and mean joint error."""
    model = sim_model(with_floor=True)
    pd = pd_parameters(joint_names(model))
    kd = GAIN_SCALE * pd["kd"]
    data = mujoco.MjData(model)
    dt = 1.0 / float(clip["fps"][0])
    ref_q = qpos_from_parts(clip["root_pos"], clip["root_quat"], clip["joint_pos"]).astype(float)
    ref_qd, ref_qdd = reference_states(model, ref_q, dt)
    tau_ff = feedforward_torques(ref_q, ref_qd, ref_qdd, clip["foot_contact"].astype(bool))
    data.qpos[:], data.qvel[:] = ref_q[0], ref_qd[0]
    substeps = int(round(dt / PHYSICS_DT))
    pelvis_err, tilt, joint_err, tracked = 0.0, 0.0, [], len(ref_q)
    for k in range(len(ref_q)):
        # The actuators hold ref angles (with implicit damping); feedforward and the
        # damping's velocity reference enter as applied joint forces.
        data.ctrl[:] = ref_q[k, 7:]
        data.qfrc_applied[6:] = tau_ff[k] + kd * ref_qd[k, 6:]
        for _ in range(substeps):
            mujoco.mj_step(model, data)
        pelvis_err = max(pelvis_err, float(np.linalg.norm(data.qpos[:3] - ref_q[k, :3])))
        tilt = max(tilt, tilt_angle(data.qpos[3:7], ref_q[k, 3:7]))
        joint_err.append(np.abs(data.qpos[7:] - ref_q[k, 7:]).mean())
        if pelvis_err >= MAX_PELVIS_ERROR or tilt >= MAX_TILT:
            tracked = k  # lost: the rest of the replay says nothing more
            break
    return {
        "max_pelvis_error": pelvis_err,
        "max_tilt": tilt,
        "mean_joint_error": float(np.mean(joint_err)),
        "max_ff_torque_ratio": float(np.max(np.abs(tau_ff) / pd["effort"])),
        "tracked_seconds": tracked * dt,
        "clip_seconds": len(ref_q) * dt,
        "ok": tracked == len(ref_q),
    }


def format_sim_report(name: str, result: dict) -> str:
    status = "balanced" if result["ok"] else "LOST"
    return (f"sim {name}: {status},"
            f" tracked {result['tracked_seconds']:.1f}/{result['clip_seconds']:.1f} s,"
            f" max pelvis drift {result['max_pelvis_error'] * 100:.1f} cm,"
            f" max tilt {np.degrees(result['max_tilt']):.1f} deg,"
            f" mean joint error {result['mean_joint_error']:.3f} rad,"
            f" peak feedforward {100 * result['max_ff_torque_ratio']:.0f}% of effort limit")
