"""Writes data/motions/README.md so the clip table always matches the generated files."""

from __future__ import annotations

from pathlib import Path

HEADER = """# Sample G1 motions (synthetic)

These clips are **synthetic**: no motion capture was involved. They were produced by
`data_process/generate_motions.py` (procedural generator; `generate_sample_motions.py` is
an alias) for the Unitree G1 (29 DoF, mjlab's `g1.xml`) to test the motion library and
tracking pipeline without a real dataset. The set covers walking at several speeds, a
jog-like fast walk (double support kept: no flight phase), backward walking, side steps,
turning in place and on the move, squats, reaching, waving and transitions between them
(walk -> stop -> wave, turn -> walk, walk -> squat, squat -> reach, ...). Clip definitions:
`data_process/motion_gen/clips.py` (the first ten) and `data_process/motion_gen/catalog.py`.

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
- Actions that follow a walk (waving, squatting) are placed relative to where the walk
  stopped; palm tasks fade in before they start.
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

Regenerate (deterministic for a given seed; the seed only perturbs speeds and amplitudes;
takes about a minute on 2 cores and prints one check line per clip, including the stance-foot
skating speed):

```bash
python data_process/generate_motions.py --out data/motions --seed {seed} \\
    --test-fraction {test_fraction}
```

## Held-out split

`split.json` holds `{{"train": [...], "test": [...]}}` clip keys (file stems). The test set is
the {num_test} keys with the smallest SHA-256 of the key (about {test_pct:.0f}% of the set): the
choice depends only on the keys, not on the seed or the order of generation.
Test keys: {test_keys}.

## Format

One `<clip>.npz` per clip (a zip of `.npy` arrays like `np.savez_compressed`, but LZMA
compressed, about 27% smaller; `np.load` reads it), float32, 50 fps, world frame, quaternions wxyz:
`fps (1,)`, `joint_names (29,)`, `body_names (30,)`, `joint_pos/joint_vel (T,29)`,
`root_pos (T,3)`, `root_quat (T,4)`, `body_pos_w (T,30,3)`, `body_quat_w (T,30,4)`,
`body_lin_vel_w (T,30,3)`, `body_ang_vel_w (T,30,3)` (finite differences of the poses),
`smpl_joints (T,24,3)` (SMPL keypoints from `gear_sonic.utils.motion_lib.smpl_keypoints`) and
`foot_contact (T,2)` (bool, left/right stance flags from the planner).

## Clips

| clip | seconds | KB | split | description |
|---|---|---|---|---|
"""


CHECKS_HEADER = """
## Check results

Stance sole height error and slide (mm), smallest clearance (self clr) between robot geoms of
non-adjacent bodies (mm, negative = penetration), peak joint speed (rad/s) and
acceleration (rad/s^2), and the smallest margin (mm, positive = inside) of the COM
(double stance) and of the whole-body ZMP (all frames) to the support polygon.

Skate is the mean / peak horizontal speed (mm/s) of the feet while flagged in stance.

| clip | sole err | slide | skate | self clr | joint vel | joint acc | COM margin | ZMP margin |
|---|---|---|---|---|---|---|---|---|
"""


def check_row(name: str, m: dict) -> str:
    skate = (f"{m['skate_mean'] * 1e3:.1f} / {m['skate_max'] * 1e3:.1f}"
             if "skate_mean" in m else "-")
    return (f"| `{name}` | {m['stance_height_err'] * 1e3:.1f} | {m['stance_slide'] * 1e3:.1f}"
            f" | {skate} | {m['min_self_clearance'] * 1e3:.1f} | {m['max_joint_vel']:.1f}"
            f" | {m['max_joint_acc']:.0f}"
            f" | {m['com_margin_double'] * 1e3:.0f} | {m['zmp_margin'] * 1e3:.0f} |")


def write_readme(out_dir: Path, summary: list, seed: int, split: dict | None = None,
                 sizes: dict | None = None, test_fraction: float = 0.1) -> None:
    """`summary` holds (ClipSpec, seconds, metrics) per clip; `sizes` bytes per clip name."""
    split = split or {"train": [spec.name for spec, _, _ in summary], "test": []}
    sizes = sizes or {}
    test = set(split["test"])
    clips = [f"| `{spec.name}` | {seconds:.1f} | {sizes.get(spec.name, 0) / 1024:.0f}"
             f" | {'test' if spec.name in test else 'train'} | {spec.description} |"
             for spec, seconds, _ in summary]
    checks = [check_row(spec.name, metrics) for spec, _, metrics in summary]
    header = HEADER.format(seed=seed, test_fraction=test_fraction, num_test=len(test),
                           test_pct=100.0 * len(test) / max(1, len(summary)),
                           test_keys=", ".join(f"`{k}`" for k in sorted(test)) or "none")
    text = (header + "\n".join(clips) + "\n"
            + CHECKS_HEADER + "\n".join(checks) + "\n")
    (out_dir / "README.md").write_text(text)
