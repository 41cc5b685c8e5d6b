"""MotionLib at dataset scale: load time, peak memory and query throughput on synthetic clips.

    python scripts/benchmark_motion_lib.py [--clips 1000 --seconds 10 --device auto]
        [--envs 4096 --future 10 --iters 50] [--keep DIR]

Clips are cheap smooth joint motions (sums of sines around the G1 default pose, the root
walking along a curve) with bodies from forward kinematics and SMPL keypoints, written as
NPZ (float32) to a temp dir; their generation is timed separately. Loading and querying run
in a fresh child process so its peak resident set (ru_maxrss) is MotionLib's alone, not the
generator's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

FPS = 50.0
NUM_SINES = 3


def g1_model():
    from data_process.motion_gen.robot import load_model

    return load_model(with_floor=False)


def synthetic_clip(rng: np.random.Generator, kin, q_default: np.ndarray, ranges: np.ndarray,
                   seconds: float) -> dict[str, np.ndarray]:
    """Smooth random motion inside 30% of each joint range, with FK bodies."""
    from gear_sonic.utils.motion_lib.smpl_keypoints import smpl_keypoints_from_bodies

    t = np.arange(int(seconds * FPS) + 1) / FPS
    num_joints = len(q_default)
    freq = rng.uniform(0.1, 1.0, (NUM_SINES, num_joints))
    phase = rng.uniform(0, 2 * np.pi, (NUM_SINES, num_joints))
    amp = 0.3 * (ranges[:, 1] - ranges[:, 0]) / (2 * NUM_SINES)
    wave = np.sin(2 * np.pi * freq[:, None] * t[None, :, None] + phase[:, None]).sum(0)
    joint_pos = np.clip(q_default + amp * wave, ranges[:, 0], ranges[:, 1])
    yaw = rng.uniform(-np.pi, np.pi) + rng.uniform(-0.3, 0.3) * t
    speed = rng.uniform(0.0, 1.2)
    root_pos = np.stack([np.cumsum(speed * np.cos(yaw)) / FPS, np.cumsum(speed * np.sin(yaw)) / FPS,
                         np.full_like(t, 0.78)], axis=1)
    root_quat = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    body_pos, body_quat = kin.forward(root_pos, root_quat, joint_pos)
    smpl = smpl_keypoints_from_bodies(body_pos, body_quat, kin.body_names)
    return dict(joint_pos=joint_pos, root_pos=root_pos, root_quat=root_quat,
                body_pos_w=body_pos, body_quat_w=body_quat, smpl_joints=smpl)


def generate(out_dir: Path, num_clips: int, seconds: float, seed: int) -> None:
    from data_process.motion_gen.robot import default_joint_pos, hinge_ranges
    from gear_sonic.utils.motion_lib import RawClip, RobotKinematics, write_npz

    model = g1_model()
    kin = RobotKinematics(model)
    q_default, ranges = default_joint_pos(model), hinge_ranges(model)
    rng = np.random.default_rng(seed)
    for i in range(num_clips):
        arrays = {k: v.astype(np.float32) for k, v in
                  synthetic_clip(rng, kin, q_default, ranges, seconds).items()}
        write_npz(out_dir / f"synth_{i:05d}.npz",
                  RawClip(key=f"synth_{i:05d}", source="", fps=FPS,
                          joint_names=list(kin.joint_names), body_names=list(kin.body_names),
                          **arrays))


def measure(motion_dir: Path, device: str, envs: int, future: int, iters: int) -> dict:
    """Runs in the child: load, then time state_at_frames batches."""
    import psutil
    import torch

    from gear_sonic.utils.motion_lib import MotionLib

    model = g1_model()
    bodies = [model.body(b).name for b in range(1, model.nbody)]
    rss0 = psutil.Process().memory_info().rss
    start = time.perf_counter()
    lib = MotionLib(motion_dir, model, bodies, device=device, target_fps=FPS)
    load_s = time.perf_counter() - start
    rss_loaded = psutil.Process().memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux

    gen = torch.Generator(device="cpu").manual_seed(0)
    offsets = torch.arange(future, device=lib.device)

    def batch() -> None:
        clip_ids = torch.randint(0, lib.num_clips, (envs,), generator=gen).to(lib.device)
        starts = (torch.rand(envs, generator=gen).to(lib.device)
                  * lib.clip_num_frames[clip_ids]).long()
        state = lib.state_at_frames(clip_ids, starts[:, None] + offsets)
        state.body_pos_w.sum().item()  # forces completion (and a sync on GPU)

    for _ in range(3):
        batch()
    start = time.perf_counter()
    for _ in range(iters):
        batch()
    query_s = (time.perf_counter() - start) / iters
    device_mem = (torch.cuda.max_memory_allocated() if lib.device.type == "cuda" else None)
    return {
        "device": str(lib.device), "clips": lib.num_clips,
        "frames": int(lib.clip_num_frames.sum()), "bodies": len(bodies),
        "load_s": load_s, "rss_before_gb": rss0 / 2**30, "rss_loaded_gb": rss_loaded / 2**30,
        "peak_rss_gb": peak / 2**30,
        "cuda_peak_gb": None if device_mem is None else device_mem / 2**30,
        "batch_ms": query_s * 1e3, "queries_per_s": envs * future / query_s,
        "batches_per_s": 1.0 / query_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--future", type=int, default=10)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="write/reuse clips here instead of a temp dir")
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args._measure:
        print(json.dumps(measure(Path(args._measure), device, args.envs, args.future, args.iters)))
        return 0

    with tempfile.TemporaryDirectory(prefix="motion_bench_") as tmp:
        motion_dir = Path(args.keep or tmp)
        motion_dir.mkdir(parents=True, exist_ok=True)
        existing = len(list(motion_dir.glob("synth_*.npz")))
        start = time.perf_counter()
        if existing != args.clips:
            for old in motion_dir.glob("synth_*.npz"):
                old.unlink()
            generate(motion_dir, args.clips, args.seconds, args.seed)
        gen_s = time.perf_counter() - start
        size_gb = sum(p.stat().st_size for p in motion_dir.glob("*.npz")) / 2**30
        print(f"generation: {args.clips} clips x {args.seconds:g} s in {gen_s:.1f} s "
              f"({size_gb:.2f} GiB of NPZ{', reused' if existing == args.clips else ''})")
        child = subprocess.run(
            [sys.executable, __file__, "--_measure", str(motion_dir), "--device", device,
             "--envs", str(args.envs), "--future", str(args.future), "--iters", str(args.iters)],
            capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stdout[-2000:], child.stderr[-4000:], file=sys.stderr)
            return child.returncode
        r = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"MotionLib on {r['device']}: {r['clips']} clips, {r['frames']:,} frames, "
          f"{r['bodies']} bodies")
    print(f"  load time      {r['load_s']:.1f} s")
    print(f"  resident set   {r['rss_before_gb']:.2f} GiB before, {r['rss_loaded_gb']:.2f} GiB "
          f"after load, peak {r['peak_rss_gb']:.2f} GiB")
    if r["cuda_peak_gb"] is not None:
        print(f"  CUDA peak      {r['cuda_peak_gb']:.2f} GiB")
    print(f"  state_at_frames {args.envs} envs x {args.future} frames: {r['batch_ms']:.2f} ms "
          f"/ batch = {r['queries_per_s']:,.0f} queries/s ({r['batches_per_s']:.0f} batches/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
