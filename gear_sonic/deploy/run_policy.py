"""Run an exported policy in plain MuJoCo (onnxruntime + mujoco + numpy).

    python gear_sonic/deploy/run_policy.py DEPLOY_DIR --motion CLIP.npz [--steps N]
        [--encoder g1|teleop|smpl] [--model robot.mjb] [--video out.mp4] [--viewer]
    python gear_sonic/deploy/run_policy.py DEPLOY_DIR --command 0.5,0,0 [--steps N]
    python gear_sonic/deploy/run_policy.py DEPLOY_DIR --commands schedule.csv [--steps N]
    python gear_sonic/deploy/run_policy.py DEPLOY_DIR --goal 2,0 [--steps N]

DEPLOY_DIR holds the ONNX policy, metadata.json and robot.mjb (see gear_sonic/deploy/README.md):
a tracking policy (policy_<encoder>.onnx) follows a motion clip, a locomotion policy
(policy.onnx) velocity commands (vx m/s, vy m/s, yaw rate rad/s; a schedule file has rows
`time_s,vx,vy,wz`), a goal-reaching policy (go2_balance) a goal x,y metres from its start.
A recurrent policy's memory is carried between steps. Prints progress and tracking error, then as its last line
`latency p50 X ms, p99 Y ms, real-time factor Z`. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Run as a script, this folder would shadow top-level modules with quat/sim/loop...: drop it, and
# find the package from the repository when it is not installed.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parents[1]) not in sys.path:
    sys.path.append(str(_HERE.parents[1]))

from gear_sonic.deploy.errors import DeployInputError

EXIT_BAD_INPUT = 2
VIDEO_SIZE = (480, 640)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("deploy_dir", type=Path, help="folder with ONNX files + metadata.json")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--motion", type=Path, help="motion clip (NPZ): a tracking policy")
    source.add_argument("--command", help="vx,vy,wz held throughout: a locomotion policy")
    source.add_argument("--commands", type=Path, help="velocity schedule (time_s,vx,vy,wz rows)")
    source.add_argument("--goal", help="x,y metres from the start (world frame): a goal policy "
                        "(a negative x: --goal=-1,2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="control steps (default: the clip, or 500 for velocity commands)")
    parser.add_argument("--encoder", default="g1", help="which policy_<encoder>.onnx to run")
    parser.add_argument("--model", type=Path, default=None, help="MuJoCo model (default robot.mjb)")
    parser.add_argument("--video", type=Path, default=None, help="mp4 path (MUJOCO_GL=egl)")
    parser.add_argument("--viewer", action="store_true", help="passive viewer (needs a display)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--keep-going", action="store_true", help="do not stop when it falls")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.steps is not None and args.steps < 1:
        print(f"error: --steps {args.steps}: give a positive number of control steps",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.video is not None:
        os.environ.setdefault("MUJOCO_GL", "egl")
    from gear_sonic.deploy.commands import CommandSchedule
    from gear_sonic.deploy.loop import DeployLoop

    try:
        commands = (CommandSchedule.constant(args.command) if args.command is not None else
                    CommandSchedule.from_file(args.commands) if args.commands is not None else
                    None)
        loop = DeployLoop(args.deploy_dir, args.motion, encoder=args.encoder,
                          model_file=args.model, threads=args.threads, commands=commands,
                          goal=None if args.goal is None else parse_goal(args.goal))
    except DeployInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    hooks = [h for h in (_video_hook(loop, args.video), _viewer_hook(loop, args.viewer)) if h]

    def on_step(current):
        for hook in hooks:
            hook.step(current)

    try:
        result = loop.run(args.steps, on_step=on_step if hooks else None,
                          stop_on_fall=not args.keep_going)
    except DeployInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        for hook in hooks:
            hook.close()
    if loop.is_goal:
        print(f"goal {args.goal}: {result.steps} steps, fell {result.fell}, distance to the "
              f"goal at the end {result.velocity_error.get('goal_distance_m', float('nan')):.3f}"
              " m")
    elif loop.is_velocity:
        errors = result.velocity_error
        print(f"velocity commands: {result.steps} steps, fell {result.fell}, planar velocity "
              f"error {errors.get('lin_vel_error', float('nan')):.3f} m/s, yaw rate error "
              f"{errors.get('yaw_rate_error', float('nan')):.3f} rad/s")
    else:
        print(f"clip {result.clip}: {result.steps} steps, frames {result.frames_reached}/"
              f"{result.frames} (progress {result.progress:.3f}), fell {result.fell}, "
              f"mpjpe_g {result.mpjpe_g_mm:.1f} mm, encoder {loop.encoder}")
    if args.video is not None:
        print(f"video: {args.video}")
    print(result.step_line())
    print(result.summary_line())
    return 0


def parse_goal(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise DeployInputError("--goal", f"{text!r} is not two numbers",
                               "give x,y in metres, e.g. 2,0") from None
    return x, y


class _VideoHook:
    def __init__(self, loop, path: Path):
        import imageio.v2 as imageio
        import mujoco

        self.renderer = mujoco.Renderer(loop.robot.model, *VIDEO_SIZE)
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = loop.robot.view.root_body
        self.camera.distance, self.camera.elevation, self.camera.azimuth = 3.0, -15.0, 135.0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = imageio.get_writer(str(path), fps=round(1.0 / loop.contract.control_dt),
                                         macro_block_size=1)
        self.step(loop)  # the start frame

    def step(self, loop) -> None:
        self.renderer.update_scene(loop.robot.data, self.camera)
        self.writer.append_data(self.renderer.render())

    def close(self) -> None:
        self.writer.close()
        self.renderer.close()


class _ViewerHook:
    def __init__(self, loop):
        import mujoco.viewer

        self.viewer = mujoco.viewer.launch_passive(loop.robot.model, loop.robot.data)
        self.dt = loop.contract.control_dt
        self.next_time = None

    def step(self, loop) -> None:
        import time

        self.viewer.sync()
        now = time.perf_counter()
        self.next_time = (self.next_time or now) + self.dt
        time.sleep(max(0.0, self.next_time - now))  # wall-clock pace for watching

    def close(self) -> None:
        self.viewer.close()


def _video_hook(loop, path):
    return _VideoHook(loop, path) if path is not None else None


def _viewer_hook(loop, wanted: bool):
    if not wanted:
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("note: --viewer needs a display (none here); running headless, use --video PATH",
              file=sys.stderr)
        return None
    return _ViewerHook(loop)


if __name__ == "__main__":
    sys.exit(main())
