"""Physical plausibility checks for generated clips (run on the saved arrays).

Each clip is replayed kinematically in MuJoCo (G1 + floor) and measured: stance
feet on the floor and not sliding, no self-penetration, nothing but the feet
touching the floor, joint limits, smooth joint velocities and accelerations,
and balance (COM inside the support polygon in double stance, whole-body ZMP
inside the support polygon throughout).
"""

from __future__ import annotations

import copy
from functools import lru_cache

import mujoco
import numpy as np

from .robot import (FLOOR_NAME, FOOT_SITES, GRAVITY, foot_geom_ids, hinge_ranges, load_model,
                    qpos_from_parts, sole_points)

# Contacts are detected this far before touching (per geom, so pairs see twice
# as much) so that the report can state the smallest clearance, not just hits.
CLEARANCE_MARGIN = 0.03

THRESHOLDS = {
    "stance_height_err": 0.01,  # m, every sole point of a stance foot within 1 cm of z = 0
    "stance_slide": 0.01,  # m, per stance phase
    "self_penetration": 0.005,  # m, between robot geoms of non-adjacent bodies
    "floor_penetration": 0.001,  # m, any non-foot geom below the floor
    "swing_sole_below": 0.005,  # m, swing soles may not dig into the floor
    "joint_range_used": 0.95,  # fraction of the half range used about its centre
    "max_joint_vel": 8.0,  # rad/s
    "max_joint_acc": 150.0,  # rad/s^2, finite differences at 50 fps
    "com_outside_double": 0.0,  # m, COM must be inside the double-stance polygon
    "zmp_outside": 0.0,  # m, whole-body ZMP must stay inside the support polygon
    "flight_frames": 0,  # frames without any foot in contact
}


@lru_cache(maxsize=1)
def check_model() -> mujoco.MjModel:
    model = copy.copy(load_model(with_floor=True))
    model.geom_margin[:] = CLEARANCE_MARGIN
    return model


def kinematic_state(model: mujoco.MjModel, data: mujoco.MjData, qpos: np.ndarray, qvel: np.ndarray,
                    collide: bool) -> None:
    """Poses, COM, centroidal momentum and optionally contacts (mj_forward minus dynamics)."""
    data.qpos[:], data.qvel[:] = qpos, qvel
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_comVel(model, data)
    mujoco.mj_subtreeVel(model, data)
    if collide:
        mujoco.mj_collision(model, data)


def cross_2d(a, b) -> float:
    return a[0] * b[1] - a[1] * b[0]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise hull of 2D points (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, np.round(points, 9))))
    if len(pts) < 3:
        return np.array(pts)

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2 and cross_2d(np.subtract(chain[-1], chain[-2]),
                                               np.subtract(p, chain[-2])) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(pts) + half(reversed(pts)))


def signed_distance_in_polygon(point: np.ndarray, hull: np.ndarray) -> float:
    """Distance to the boundary of a CCW convex polygon, positive inside."""
    edges = np.roll(hull, -1, axis=0) - hull
    rel = point - hull
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    lengths = np.linalg.norm(edges, axis=1)
    if np.all(cross >= 0.0):
        return float(np.min(cross / lengths))
    t = np.clip(np.sum(rel * edges, axis=1) / lengths**2, 0.0, 1.0)
    closest = hull + t[:, None] * edges
    return -float(np.min(np.linalg.norm(point - closest, axis=1)))


def stance_phases(contact: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges where a single foot's contact flag stays on."""
    padded = np.concatenate([[False], contact.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def _contact_distances(data: mujoco.MjData, floor_id: int,
                       foot_geoms: np.ndarray) -> tuple[float, float]:
    """Smallest robot-robot distance and smallest non-foot-to-floor distance this frame.

    MuJoCo already drops parent-child pairs and the XML's <exclude> pairs, so every
    robot-robot contact here is between non-adjacent bodies.
    """
    geoms = data.contact.geom[: data.ncon]
    dist = data.contact.dist[: data.ncon]
    with_floor = (geoms == floor_id).any(axis=1)
    other = np.where(geoms[:, 0] == floor_id, geoms[:, 1], geoms[:, 0])
    nonfoot_floor = with_floor & ~np.isin(other, foot_geoms)
    self_dist = dist[~with_floor].min(initial=np.inf)
    floor_dist = dist[nonfoot_floor].min(initial=np.inf)
    return float(self_dist), float(floor_dist)


def finite_difference_qvel(model: mujoco.MjModel, qpos: np.ndarray, dt: float) -> np.ndarray:
    """Generalised velocities of a qpos trajectory by central differences."""
    qvel = np.zeros((len(qpos), model.nv))
    for k in range(len(qpos)):
        lo, hi = max(k - 1, 0), min(k + 1, len(qpos) - 1)
        mujoco.mj_differentiatePos(model, qvel[k], (hi - lo) * dt, qpos[lo], qpos[hi])
    return qvel


def replay(clip: dict) -> dict:
    """Per-frame kinematic quantities of a clip: sole points, foot sites, COM, contacts."""
    model = check_model()
    data = mujoco.MjData(model)
    floor_id = model.geom(FLOOR_NAME).id
    feet_geoms = foot_geom_ids(model)
    all_foot_geoms = np.concatenate(feet_geoms)
    qpos = qpos_from_parts(clip["root_pos"], clip["root_quat"], clip["joint_pos"])
    qvel = finite_difference_qvel(model, qpos, 1.0 / float(np.asarray(clip["fps"]).reshape(-1)[0]))
    out = {"soles": [], "sites": [], "com": [], "angmom": [], "self_dist": [], "floor_dist": []}
    for q, v in zip(qpos, qvel):
        kinematic_state(model, data, q, v, collide=True)
        out["soles"].append([sole_points(model, data, ids) for ids in feet_geoms])
        out["sites"].append([data.site(s).xpos.copy() for s in FOOT_SITES])
        out["com"].append(data.subtree_com[1].copy())
        out["angmom"].append(data.subtree_angmom[1].copy())
        self_dist, floor_dist = _contact_distances(data, floor_id, all_foot_geoms)
        out["self_dist"].append(self_dist)
        out["floor_dist"].append(floor_dist)
    return {k: np.array(v) for k, v in out.items()}


def _support_margins(points: np.ndarray, soles: np.ndarray, contact: np.ndarray,
                     frames: np.ndarray) -> np.ndarray:
    """Signed distance of points[k] to the support polygon of the stance feet, for k in frames.

    The polygon is rebuilt only when the contact state changes: stance feet do not
    move (the slide check bounds that separately), so the first frame of each
    contact phase defines it.
    """
    margins, hull, previous = [], None, None
    for k in frames:
        if previous is None or k != previous + 1 or (contact[k] != contact[previous]).any():
            hull = convex_hull(soles[k][contact[k]].reshape(-1, 3)[:, :2])
        margins.append(signed_distance_in_polygon(points[k], hull))
        previous = k
    return np.array(margins)


def multibody_zmp(com: np.ndarray, angmom: np.ndarray, mass: float, dt: float) -> np.ndarray:
    """ZMP of the whole-body motion from COM acceleration and centroidal angular momentum rate.

    Unlike the pendulum model used for planning, this includes the swinging
    limbs' angular momentum, so it is where the feet must actually push.
    """
    acc = np.gradient(np.gradient(com, dt, axis=0), dt, axis=0)
    dmom = np.gradient(angmom, dt, axis=0)
    vertical = GRAVITY + acc[:, 2]
    zmp_x = com[:, 0] - (com[:, 2] * acc[:, 0] + dmom[:, 1] / mass) / vertical
    zmp_y = com[:, 1] - (com[:, 2] * acc[:, 1] - dmom[:, 0] / mass) / vertical
    return np.stack([zmp_x, zmp_y], axis=1)


def balance_metrics(com: np.ndarray, angmom: np.ndarray, soles: np.ndarray, contact: np.ndarray,
                    dt: float) -> dict:
    """COM margin in double stance and whole-body ZMP margin over all supported frames."""
    double = np.flatnonzero(contact.all(axis=1))
    com_margin = _support_margins(com[:, :2], soles, contact, double)
    mass = float(check_model().body_subtreemass[1])
    zmp = multibody_zmp(com, angmom, mass, dt)
    supported = np.flatnonzero(contact.any(axis=1))
    zmp_margin = _support_margins(zmp, soles, contact, supported)
    return {
        "com_margin_double": float(com_margin.min()) if len(com_margin) else np.inf,
        "zmp_margin": float(zmp_margin.min()) if len(zmp_margin) else -np.inf,
    }


def foot_metrics(soles: np.ndarray, sites: np.ndarray, contact: np.ndarray) -> dict:
    """Stance sole height error, stance slide, and how far swing soles dip below z = 0."""
    height_err, slide, swing_low = 0.0, 0.0, np.inf
    for side in range(2):
        z = soles[:, side, :, 2]
        stance = contact[:, side]
        if stance.any():
            height_err = max(height_err, float(np.abs(z[stance]).max()))
        if (~stance).any():
            swing_low = min(swing_low, float(z[~stance].min()))
        for start, end in stance_phases(stance):
            drift = np.linalg.norm(sites[start:end, side, :2] - sites[start, side, :2], axis=1)
            slide = max(slide, float(drift.max()))
    return {"stance_height_err": height_err, "stance_slide": slide,
            "swing_sole_min_z": swing_low}


def smoothness_metrics(joint_pos: np.ndarray, dt: float) -> dict:
    vel = np.gradient(joint_pos, dt, axis=0)
    acc = np.gradient(vel, dt, axis=0)
    return {"max_joint_vel": float(np.abs(vel).max()), "max_joint_acc": float(np.abs(acc).max())}


def joint_range_used(joint_pos: np.ndarray) -> float:
    """Largest |q - centre| / half-range over the clip (1.0 = at a limit)."""
    ranges = hinge_ranges(check_model())
    centre = ranges.mean(axis=1)
    half = 0.5 * (ranges[:, 1] - ranges[:, 0])
    return float(np.max(np.abs(joint_pos - centre) / half))


def evaluate_clip(clip: dict) -> dict:
    """All metrics of one clip given its arrays (as saved in the NPZ)."""
    dt = 1.0 / float(np.asarray(clip["fps"]).reshape(-1)[0])
    contact = np.asarray(clip["foot_contact"]).astype(bool)
    frames = replay(clip)
    metrics = {}
    metrics.update(foot_metrics(frames["soles"], frames["sites"], contact))
    metrics["min_self_clearance"] = float(frames["self_dist"].min())
    metrics["min_nonfoot_floor_clearance"] = float(frames["floor_dist"].min())
    metrics["joint_range_used"] = joint_range_used(clip["joint_pos"])
    metrics.update(smoothness_metrics(clip["joint_pos"], dt))
    metrics.update(balance_metrics(frames["com"], frames["angmom"], frames["soles"], contact, dt))
    metrics["flight_frames"] = int((~contact.any(axis=1)).sum())
    return metrics


def failed_checks(metrics: dict) -> list[str]:
    """Names of the checks a clip fails (empty when plausible)."""
    t = THRESHOLDS
    failures = {
        "stance_height_err": metrics["stance_height_err"] > t["stance_height_err"],
        "stance_slide": metrics["stance_slide"] > t["stance_slide"],
        "self_penetration": metrics["min_self_clearance"] < -t["self_penetration"],
        "floor_penetration": metrics["min_nonfoot_floor_clearance"] < -t["floor_penetration"],
        "swing_sole_below": metrics["swing_sole_min_z"] < -t["swing_sole_below"],
        "joint_range_used": metrics["joint_range_used"] > t["joint_range_used"],
        "max_joint_vel": metrics["max_joint_vel"] > t["max_joint_vel"],
        "max_joint_acc": metrics["max_joint_acc"] > t["max_joint_acc"],
        "com_outside_double": metrics["com_margin_double"] < -t["com_outside_double"],
        "zmp_outside": metrics["zmp_margin"] < -t["zmp_outside"],
        "flight_frames": metrics["flight_frames"] > t["flight_frames"],
    }
    return [name for name, failed in failures.items() if failed]


def format_report(name: str, seconds: float, metrics: dict, failures: list[str]) -> str:
    m = metrics
    status = "OK  " if not failures else "FAIL"
    line = (f"{status} {name:<22s} {seconds:4.1f}s"
            f" | stance z err {m['stance_height_err'] * 1e3:4.1f} mm"
            f" slide {m['stance_slide'] * 1e3:4.1f} mm"
            f" | self clr {m['min_self_clearance'] * 1e3:5.1f} mm"
            f" floor clr {m['min_nonfoot_floor_clearance'] * 1e3:5.1f} mm"
            f" swing z {m['swing_sole_min_z'] * 1e3:5.1f} mm | range {m['joint_range_used']:.2f}"
            f" | vel {m['max_joint_vel']:4.1f} acc {m['max_joint_acc']:5.1f}"
            f" | COM margin {m['com_margin_double'] * 1e3:5.1f} mm"
            f" ZMP margin {m['zmp_margin'] * 1e3:5.1f} mm")
    if failures:
        line += "  <-- " + ", ".join(failures)
    return line
