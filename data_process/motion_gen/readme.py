"""Writes data/motions/README.md so the clip table always matches the generated files."""

from __future__ import annotations

from pathlib import Path

HEADER = """# Sample G1 motions (synthetic)

These clips are **synthetic**: no motion capture was involved. They were produced by
`data_process/generate_sample_motions.py` for the Unitree G1 (29 DoF, mjlab's `g1.xml`)
to test the motion library and tracking pipeline without a real dataset.

## How they were made

- A footstep planner alternates stance (foot fixed on the floor) and swing (foot follows
  a smooth raised arc, landing flat); turning rotates the foot placements.
- The centre of mass follows the linear-inverted-pendulum solution whose ZMP sits on the
  stance foot in single support and glides between the feet in double support; a few
  refinement passes shift that reference by the measured error so that the whole-body ZMP
  of the final motion (swinging limbs' momentum included) lands where intended.
- Whole-body IK with mink (daqp) tracks foot sites, COM, pelvis height/orientation, torso
  orientation, palm targets (waving, reaching) and a posture bias toward mjlab's
  knees-bent keyframe, inside 94% of every joint range.
- Every clip starts and ends in the default double stance (soles at z = 0), so a simulated
  robot can be initialised on frame 0.
- The generator replays every clip in MuJoCo and fails if: a stance sole is more than 1 cm
  off the floor, a stance foot slides 1 cm or more, robot geoms of non-adjacent bodies
  penetrate by more than 5 mm, anything but a foot touches the floor, a joint uses more
  than 95% of its range, joint speed exceeds 8 rad/s or acceleration 150 rad/s^2, the COM
  leaves the support polygon in double stance, or the whole-body ZMP ever leaves it.
- The standing clips (`stand_idle`, `squat`, `wave_right_hand`, `reach_forward`) are also
  tracked in plain MuJoCo (floating base free) with inverse-dynamics feedforward plus joint PD
  (mjlab gains x6) and stay balanced to the end. Stepping clips are tracked open loop for
  2-4 steps before drifting, as expected without balance feedback. Note that plain PD with
  mjlab's nominal gains cannot hold any G1 stance, not even the constant default keyframe
  (the joints sag and the robot topples within ~1 s; with gravity feedforward it still
  drifts over in ~3 s because the ankles are softer than the body's gravitational
  stiffness): a tracking policy has to provide the balance.

Regenerate (deterministic for a given seed; the seed only perturbs speeds and amplitudes):

```bash
python data_process/generate_sample_motions.py --out data/motions --seed {seed}
```

## Format

One `<clip>.npz` per clip (`np.savez_compressed`, float32), 50 fps, world frame, quaternions wxyz:
`fps (1,)`, `joint_names (29,)`, `body_names (30,)`, `joint_pos/joint_vel (T,29)`,
`root_pos (T,3)`, `root_quat (T,4)`, `body_pos_w (T,30,3)`, `body_quat_w (T,30,4)`,
`body_lin_vel_w (T,30,3)`, `body_ang_vel_w (T,30,3)` (finite differences of the poses),
`smpl_joints (T,24,3)` (SMPL keypoints from `gear_sonic.utils.motion_lib.smpl_keypoints`) and
`foot_contact (T,2)` (bool, left/right stance flags from the planner).

## Clips

| clip | seconds | description |
|---|---|---|
"""


CHECKS_HEADER = """
## Check results

Stance sole height error and slide (mm), smallest clearance between robot geoms of
non-adjacent bodies (mm, negative = penetration), peak joint speed (rad/s) and
acceleration (rad/s^2), and the smallest margin (mm, positive = inside) of the COM
(double stance) and of the whole-body ZMP (all frames) to the support polygon.

| clip | sole err | slide | self clearance | joint vel | joint acc | COM margin | ZMP margin |
|---|---|---|---|---|---|---|---|
"""


def check_row(name: str, m: dict) -> str:
    return (f"| `{name}` | {m['stance_height_err'] * 1e3:.1f} | {m['stance_slide'] * 1e3:.1f}"
            f" | {m['min_self_clearance'] * 1e3:.1f} | {m['max_joint_vel']:.1f}"
            f" | {m['max_joint_acc']:.0f}"
            f" | {m['com_margin_double'] * 1e3:.0f} | {m['zmp_margin'] * 1e3:.0f} |")


def write_readme(out_dir: Path, summary: list, seed: int) -> None:
    """`summary` holds (ClipSpec, seconds, metrics) per clip."""
    clips = [f"| `{spec.name}` | {seconds:.1f} | {spec.description} |"
             for spec, seconds, _ in summary]
    checks = [check_row(spec.name, metrics) for spec, _, metrics in summary]
    text = (HEADER.format(seed=seed) + "\n".join(clips) + "\n"
            + CHECKS_HEADER + "\n".join(checks) + "\n")
    (out_dir / "README.md").write_text(text)
