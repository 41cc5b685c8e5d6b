"""Tracking metrics over body-position trajectories, in millimetres (REFERENCE section 10).

Every function takes reference and robot positions shaped (T, B, 3) (frames, bodies, xyz) in
metres and returns a float in mm. Velocity and acceleration errors are per-frame differences
(first and second differences of positions at the env rate, 50 Hz), not divided by dt: the
convention of PHC and SONIC, so the numbers compare with theirs. Groups select bodies by name,
so any tracked-body list works.
"""

from __future__ import annotations

import re

import numpy as np
import torch

MM = 1000.0
METRICS = ("mpjpe_g", "mpjpe_l", "mpjpe_pa", "vel_dist", "accel_dist")
GROUP_PATTERNS = {
    "legs": r".*_(hip|knee|ankle)_.*link",
    "vr_3points": r"(torso_link|.*_wrist_yaw_link)",
    "foot": r".*_ankle_roll_link",
}
# A similarity transform has 7 degrees of freedom: with 3 bodies or fewer it fits them (almost)
# exactly, so PA-MPJPE of such a group is ~0 by construction and says nothing.
MIN_PA_BODIES = 4
# Terms in each metric's mean per clip: frames scored minus the frames a difference consumes.
FRAMES_CONSUMED = {"mpjpe": 0, "vel": 1, "accel": 2}


def units(step_dt: float) -> dict[str, str]:
    """Unit of every metric family and rate, for metrics_eval.json."""
    hz = f"{1.0 / step_dt:.0f} Hz"
    return {
        "mpjpe_g": "mm", "mpjpe_l": "mm", "mpjpe_pa": "mm",
        "vel_dist": f"mm per frame ({hz}): mean |first difference robot - reference|",
        "accel_dist": f"mm per frame^2 ({hz}): mean |second difference robot - reference|",
        "success_rate": "fraction of clips", "progress_rate": "mean fraction of frames reached",
        "frame_weighted": "mean over all scored frames of all clips (PHC), not over clips",
    }


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float64)


def body_groups(body_names, anchor_name: str = "pelvis") -> dict[str, list[int]]:
    """Indices per group; other_upper_bodies = neither legs nor VR points nor the anchor."""
    names = list(body_names)
    groups = {g: [i for i, n in enumerate(names) if re.fullmatch(p, n)]
              for g, p in GROUP_PATTERNS.items()}
    taken = set(groups["legs"]) | set(groups["vr_3points"])
    groups["other_upper_bodies"] = [i for i, n in enumerate(names)
                                    if i not in taken and n != anchor_name]
    return groups


def mpjpe_g(ref, robot) -> float:
    return float(torch.norm(_t(ref) - _t(robot), dim=-1).mean() * MM)


def mpjpe_l(ref, robot, anchor_index: int = 0) -> float:
    ref, robot = _t(ref), _t(robot)
    ref = ref - ref[:, anchor_index : anchor_index + 1]
    robot = robot - robot[:, anchor_index : anchor_index + 1]
    return float(torch.norm(ref - robot, dim=-1).mean() * MM)


def procrustes_align(ref: torch.Tensor, robot: torch.Tensor) -> torch.Tensor:
    """Robot bodies moved onto ref per frame by the best similarity transform (Umeyama)."""
    mu_ref, mu_rob = ref.mean(1, keepdim=True), robot.mean(1, keepdim=True)
    x, y = robot - mu_rob, ref - mu_ref
    cov = x.transpose(1, 2) @ y  # (T, 3, 3)
    u, s, vt = torch.linalg.svd(cov)
    # Reflection guard: force det(R) = +1.
    d = torch.sign(torch.det(u @ vt))
    fix = torch.ones_like(s)
    fix[:, -1] = d
    rot = u @ torch.diag_embed(fix) @ vt  # x @ rot ~ y
    var = (x**2).sum(dim=(1, 2)).clamp_min(1e-12)
    scale = (s * fix).sum(-1) / var
    return scale[:, None, None] * (x @ rot) + mu_ref


def mpjpe_pa(ref, robot) -> float:
    ref, robot = _t(ref), _t(robot)
    if ref.shape[1] < MIN_PA_BODIES:
        raise ValueError(f"mpjpe_pa needs at least {MIN_PA_BODIES} bodies, got {ref.shape[1]}")
    return float(torch.norm(ref - procrustes_align(ref, robot), dim=-1).mean() * MM)


def vel_dist(ref, robot) -> float:
    """Mean over frames and bodies of |(p_t - p_t-1)_robot - (p_t - p_t-1)_ref|, mm per frame."""
    ref, robot = _t(ref), _t(robot)
    if ref.shape[0] < 2:
        return 0.0
    diff = (ref[1:] - ref[:-1]) - (robot[1:] - robot[:-1])
    return float(torch.norm(diff, dim=-1).mean() * MM)


def accel_dist(ref, robot) -> float:
    """Mean |second difference of robot - of reference|, mm per frame^2."""
    ref, robot = _t(ref), _t(robot)
    if ref.shape[0] < 3:
        return 0.0
    acc = lambda p: p[2:] - 2 * p[1:-1] + p[:-2]  # noqa: E731
    return float(torch.norm(acc(ref) - acc(robot), dim=-1).mean() * MM)


def clip_metrics(ref, robot, body_names, anchor_index: int = 0) -> dict[str, float]:
    """All metrics for one clip, whole body and per group (`<metric>_<group>`).

    Also `frames_scored` (frames in the means), the weight of the frame-weighted aggregates.
    PA-MPJPE is left out for groups of fewer than MIN_PA_BODIES bodies.
    """
    ref, robot = _t(ref), _t(robot)
    names = list(body_names)
    groups = {"": list(range(len(names))), **body_groups(names, names[anchor_index])}
    result = {"frames_scored": int(ref.shape[0])}
    for group, idx in groups.items():
        if not idx:
            continue
        r, b = ref[:, idx], robot[:, idx]
        suffix = f"_{group}" if group else ""
        result[f"mpjpe_g{suffix}"] = mpjpe_g(r, b)
        result[f"mpjpe_l{suffix}"] = _local_group(ref, robot, idx, anchor_index)
        if len(idx) >= MIN_PA_BODIES:
            result[f"mpjpe_pa{suffix}"] = mpjpe_pa(r, b)
        result[f"vel_dist{suffix}"] = vel_dist(r, b)
        result[f"accel_dist{suffix}"] = accel_dist(r, b)
    return result


def _local_group(ref, robot, idx, anchor_index) -> float:
    # Root-relative group error: subtract the whole-body anchor, then keep the group's bodies.
    ref = ref - ref[:, anchor_index : anchor_index + 1]
    robot = robot - robot[:, anchor_index : anchor_index + 1]
    return float(torch.norm(ref[:, idx] - robot[:, idx], dim=-1).mean() * MM)


def _frame_weight(key: str, row: dict) -> int:
    frames = int(row.get("frames_scored", 0))
    return max(0, frames - FRAMES_CONSUMED[key.split("_")[0]])


def worst_first(row: dict) -> tuple:
    """Sort key over per-clip rows, worst first: failed, then least progress, then the largest
    global error. The renderer picks its clips and the report orders its cards with it."""
    def number(key, default):
        value = row.get(key)
        return float(value) if isinstance(value, (int, float)) else default

    return (number("success", 1.0), number("progress", 1.0), -number("mpjpe_g", 0.0))


def aggregate(per_clip: list[dict]) -> dict[str, float]:
    """per_clip rows hold `success` (bool), `progress` (0..1), `frames_scored` and metric values.

    -> success_rate, progress_rate, `<metric>_succ` / `<metric>_all` (mean over successful /
    all clips, NaN when none) and `<metric>_succ_frame_weighted` / `<metric>_all_frame_weighted`
    (mean over every scored frame, as PHC pools them: long clips count more).
    """
    if not per_clip:
        return {"num_clips": 0, "success_rate": 0.0, "progress_rate": 0.0}
    out = {
        "num_clips": len(per_clip),
        "success_rate": float(np.mean([bool(r["success"]) for r in per_clip])),
        "progress_rate": float(np.mean([float(r["progress"]) for r in per_clip])),
    }
    keys = sorted({k for r in per_clip for k in r if k.split("_")[0] in FRAMES_CONSUMED})
    for key in keys:
        for subset, rows in (("all", per_clip), ("succ", [r for r in per_clip if r["success"]])):
            rows = [r for r in rows if key in r]
            values = np.array([r[key] for r in rows], dtype=np.float64)
            weights = np.array([_frame_weight(key, r) for r in rows], dtype=np.float64)
            out[f"{key}_{subset}"] = float(values.mean()) if rows else float("nan")
            total = weights.sum()
            out[f"{key}_{subset}_frame_weighted"] = (
                float((weights * values).sum() / total) if total > 0 else float("nan"))
    return out
