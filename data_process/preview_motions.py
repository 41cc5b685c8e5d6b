"""Kinematic replay of motion clips to mp4 plus a contact-sheet PNG per clip.

    MUJOCO_GL=egl python data_process/preview_motions.py PATH OUT_DIR [--clips KEY ...]
        [--width 320 --height 240] [--frames-per-sheet 8] [--max-seconds 20]

PATH is anything read_motion_file / list_motion_files accepts (an NPZ, a SONIC PKL, or a
folder of them). Each clip is drawn on the G1 model with a floor, with a camera that follows
the pelvis; nothing is simulated, so what you see is exactly the reference.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import imageio.v2 as imageio  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_process.motion_gen.robot import joint_names, load_model  # noqa: E402
from gear_sonic.utils.motion_lib import (MotionDataError, RawClip,  # noqa: E402
                                         list_motion_files, read_motion_file)
from gear_sonic.utils.motion_lib.safe_pickle import TRUST_PICKLE_HELP  # noqa: E402

SHEET_COLUMNS = 4


def clip_qpos(clip: RawClip, model: mujoco.MjModel) -> np.ndarray:
    """(T, nq) qpos in the model's joint order; clips without a root stand at the origin."""
    names = joint_names(model)
    if clip.joint_names:
        missing = [n for n in names if n not in clip.joint_names]
        if missing:
            raise MotionDataError(f"lacks robot joints {missing}", source=clip.source,
                                  clip_key=clip.key, field="joint_names",
                                  fix="preview clips of the G1 only")
        joints = clip.joint_pos[:, [clip.joint_names.index(n) for n in names]]
    else:
        joints = clip.joint_pos
    qpos = np.zeros((clip.num_frames, model.nq))
    if clip.has_root:
        qpos[:, :3], qpos[:, 3:7] = clip.root_pos, clip.root_quat
    else:
        qpos[:, 2], qpos[:, 3] = 0.8, 1.0
    qpos[:, 7:] = joints
    return qpos


def render_frames(model: mujoco.MjModel, qpos: np.ndarray, width: int, height: int,
                  stride: int = 1) -> list[np.ndarray]:
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.distance, camera.elevation, camera.azimuth = 2.4, -12.0, 135.0
    frames = []
    with mujoco.Renderer(model, height, width) as renderer:
        for q in qpos[::stride]:
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            # Follow the pelvis at a fixed height so squats stay visible as squats.
            camera.lookat[:] = [q[0], q[1], 0.7]
            renderer.update_scene(data, camera)
            frames.append(renderer.render().copy())
    return frames


def contact_sheet(frames: list[np.ndarray], count: int) -> np.ndarray:
    """`count` evenly spaced frames tiled in rows of SHEET_COLUMNS."""
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = [frames[i] for i in picks]
    rows = -(-len(tiles) // SHEET_COLUMNS)
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (rows * SHEET_COLUMNS - len(tiles))
    return np.vstack([np.hstack(tiles[r * SHEET_COLUMNS:(r + 1) * SHEET_COLUMNS])
                      for r in range(rows)])


def preview_clip(clip: RawClip, model: mujoco.MjModel, out_dir: Path, width: int,
                 height: int, sheet_frames: int, max_seconds: float) -> tuple[Path, Path]:
    qpos = clip_qpos(clip, model)[: int(max_seconds * clip.fps) + 1]
    # Render at most ~30 fps: enough to judge a motion, half the work at 50-60 fps sources.
    stride = max(1, int(round(clip.fps / 30.0)))
    frames = render_frames(model, qpos, width, height, stride)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in clip.key)
    video, sheet = out_dir / f"{safe}.mp4", out_dir / f"{safe}_sheet.png"
    imageio.mimwrite(video, frames, fps=clip.fps / stride, macro_block_size=1)
    imageio.imwrite(sheet, contact_sheet(frames, sheet_frames))
    return video, sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("out_dir")
    parser.add_argument("--clips", nargs="*", default=None, help="clip keys (default: all)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames-per-sheet", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    args = parser.parse_args(argv)
    model = load_model(with_floor=True)
    # The default offscreen buffer is 640x480; larger videos need a bigger one.
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, args.width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, args.height)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        clips = [c for f in list_motion_files(args.path)
                 for c in read_motion_file(f, trust_pickle=args.trust_pickle)]
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.clips:
        unknown = sorted(set(args.clips) - {c.key for c in clips})
        if unknown:
            print(f"error: clips {unknown} not found in {args.path}", file=sys.stderr)
            return 1
        clips = [c for c in clips if c.key in args.clips]
    for clip in clips:
        video, sheet = preview_clip(clip, model, out_dir, args.width, args.height,
                                    args.frames_per_sheet, args.max_seconds)
        print(f"{clip.key}: {video} {sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
