"""Dynamic balance refinement of the COM plan (a simple "dynamics filter").

The pendulum model used to plan the COM ignores the angular momentum of the
swinging legs and arms and the COM height changes, so the real whole-body ZMP of
the IK result drifts away from the reference (centimetres while walking). Each
refinement pass measures that drift on the IK result and shifts the pendulum's
ZMP reference by the opposite amount, so the whole-body ZMP converges onto the
intended reference (foot centres and the glide between them).
"""

from __future__ import annotations

import mujoco
import numpy as np

from .checks import finite_difference_qvel, kinematic_state, multibody_zmp
from .gait import lipm_com_from_zmp
from .ik import TaskTargets, WholeBodyIK
from .robot import DT, load_model, standing_geometry

REFINEMENT_PASSES = 3


def whole_body_zmp(qpos: np.ndarray) -> np.ndarray:
    """(T, 2) ZMP implied by a kinematic trajectory (COM motion + centroidal momentum)."""
    model = load_model(with_floor=False)
    data = mujoco.MjData(model)
    com, angmom = [], []
    for q, v in zip(qpos, finite_difference_qvel(model, qpos, DT)):
        kinematic_state(model, data, q, v, collide=False)
        com.append(data.subtree_com[1].copy())
        angmom.append(data.subtree_angmom[1].copy())
    return multibody_zmp(np.array(com), np.array(angmom), float(model.body_subtreemass[1]), DT)


def solve_balanced(targets: TaskTargets, zmp_reference: np.ndarray,
                   passes: int = REFINEMENT_PASSES) -> tuple[np.ndarray, float]:
    """IK trajectory whose whole-body ZMP follows `zmp_reference`; also the final max ZMP error."""
    com_height = standing_geometry()["com_height"]
    pendulum_zmp = zmp_reference.copy()
    for _ in range(passes + 1):
        targets.com_xy = lipm_com_from_zmp(pendulum_zmp, com_height)
        qpos = WholeBodyIK().solve(targets)
        error = whole_body_zmp(qpos) - zmp_reference
        pendulum_zmp -= error
    return qpos, float(np.abs(error).max())
