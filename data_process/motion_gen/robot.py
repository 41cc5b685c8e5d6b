"""G1 model loading, naming and geometry helpers shared by the generator and the checks."""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

FPS = 50.0
DT = 1.0 / FPS
GRAVITY = 9.81
FOOT_SITES = ("left_foot", "right_foot")
HAND_SITES = ("left_palm", "right_palm")
FOOT_GEOM_PATTERN = re.compile(r"^(left|right)_foot[1-7]_collision$")
FLOOR_NAME = "floor"
ROOT_QPOS = 7  # free joint: xyz + quaternion (wxyz)


@lru_cache(maxsize=1)
def g1_xml_path() -> Path:
    """mjlab's G1 model file.

    Importing mjlab's asset zoo takes ~10 s (torch, warp), which the checks and
    tests do not need, so look for the file inside the installed package first.
    """
    spec = importlib.util.find_spec("mjlab")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "asset_zoo" / "robots" / "unitree_g1" / "xmls" / "g1.xml"
        if candidate.is_file():
            return candidate
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_XML

    return Path(G1_XML)


def build_spec(with_floor: bool) -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(str(g1_xml_path()))
    if with_floor:
        # The asset has no ground; the checks and the sim need one at z = 0.
        spec.worldbody.add_geom(
            name=FLOOR_NAME, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05]
        )
    return spec


@lru_cache(maxsize=None)
def load_model(with_floor: bool = True) -> mujoco.MjModel:
    """Compiled G1 model (cached: treat the result as read-only)."""
    return build_spec(with_floor).compile()


def joint_names(model: mujoco.MjModel) -> list[str]:
    """The 29 hinge joints in XML order (the free joint excluded)."""
    return [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] != 0]


def body_names(model: mujoco.MjModel) -> list[str]:
    """All robot bodies in XML order (the world body excluded)."""
    return [model.body(b).name for b in range(1, model.nbody)]


def hinge_ranges(model: mujoco.MjModel) -> np.ndarray:
    """(29, 2) joint ranges of the hinge joints, aligned with joint_names()."""
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] != 0]
    return model.jnt_range[hinges].copy()


def shrunk_ranges(ranges: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Ranges scaled about their centre so only `keep_fraction` of each is usable."""
    centre = ranges.mean(axis=1, keepdims=True)
    half = 0.5 * (ranges[:, 1:] - ranges[:, :1]) * keep_fraction
    return np.hstack([centre - half, centre + half])


def default_joint_pos(model: mujoco.MjModel) -> np.ndarray:
    """The knees-bent keyframe used by mjlab as the G1 initial state."""
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import KNEES_BENT_KEYFRAME  # slow import

    names = joint_names(model)
    q = np.zeros(len(names))
    for pattern, value in KNEES_BENT_KEYFRAME.joint_pos.items():
        for i, name in enumerate(names):
            if re.fullmatch(pattern, name):
                q[i] = value
    return q


def foot_geom_ids(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """Collision capsule ids of the left and right foot soles."""
    left, right = [], []
    for g in range(model.ngeom):
        match = FOOT_GEOM_PATTERN.match(model.geom(g).name)
        if match:
            (left if match.group(1) == "left" else right).append(g)
    return np.array(left), np.array(right)


def sole_points(model: mujoco.MjModel, data: mujoco.MjData, geom_ids: np.ndarray) -> np.ndarray:
    """Lowest points of the sole capsules' end caps, (2 * n, 3).

    Each capsule contributes both end points shifted down by its radius, which is
    where the capsule touches a flat floor when the foot is level.
    """
    axes = data.geom_xmat[geom_ids].reshape(-1, 3, 3)[:, :, 2]
    half = (model.geom_size[geom_ids, 1])[:, None] * axes
    centres = data.geom_xpos[geom_ids]
    points = np.concatenate([centres + half, centres - half])
    points[:, 2] -= np.tile(model.geom_size[geom_ids, 0], 2)
    return points


def qpos_from_parts(root_pos: np.ndarray, root_quat: np.ndarray,
                    joint_pos: np.ndarray) -> np.ndarray:
    """Stack root position, root quaternion (wxyz) and joints into MuJoCo qpos rows."""
    return np.concatenate([root_pos, root_quat, joint_pos], axis=-1)


@lru_cache(maxsize=None)
def standing_geometry() -> dict:
    """Measurements of the default pose with the soles resting on the floor.

    Returns the pelvis height that puts the lowest sole point at z = 0, the foot
    site height above the floor in that pose, the site offset from the sole and
    the whole-body COM height (for the inverted-pendulum model).
    """
    model = load_model(True)
    data = mujoco.MjData(model)
    qpos = qpos_from_parts(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0, 0, 0]),
                           default_joint_pos(model))
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    left_ids, _ = foot_geom_ids(model)
    sole_z = sole_points(model, data, left_ids)[:, 2].min()
    pelvis_z = 1.0 - sole_z
    site = data.site(FOOT_SITES[0])
    # Site height over the sole for a level foot, from the body-frame geometry
    # (the capsules lie horizontally in the ankle-roll frame).
    sole_local_z = min(model.geom_pos[g, 2] - model.geom_size[g, 0] for g in left_ids)
    site_local_z = model.site_pos[model.site(FOOT_SITES[0]).id, 2]
    return {
        "pelvis_z": float(pelvis_z),
        "site_above_sole": float(site_local_z - sole_local_z),
        "foot_site_y": float(abs(site.xpos[1])),
        "foot_site_x": float(site.xpos[0]),
        "com_height": float(data.subtree_com[1][2] - sole_z),
        "com_x": float(data.subtree_com[1][0]),
    }
