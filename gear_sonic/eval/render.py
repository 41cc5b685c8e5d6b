"""Offscreen videos of clips played by a policy, with a translucent ghost of the reference.

    paths = render_clips(cfg, policy_fn, clip_slots=[0, 3], out_dir="videos")

Each clip starts exactly on its frame 0 (`evaluate.begin_clips`, as in evaluation) and runs for
`num_frames` steps (default: the clip length) or until env 0 terminates. Every step, a CPU MjData
is filled from env 0's warp state and rendered with `mujoco.Renderer`; the reference pose (root
pose + joints of the command) is set on a second MjData and its geoms are added to the same
scene with `mjv_addGeoms`, tinted and at alpha 0.3. The camera tracks the pelvis.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import mujoco
import numpy as np
import torch

from gear_sonic.utils.atomic_io import atomic_write_text
from gear_sonic.utils.safe_names import path_inside

GHOST_RGBA = (0.3, 0.6, 1.0, 0.3)
WIDTH, HEIGHT = 640, 480
VIDEO_INDEX = "clips.json"  # clip key -> video file name, written beside the videos
CAMERA = {"distance": 3.0, "elevation": -15.0, "azimuth": 135.0}


def _as_env(env_cfg_or_env, num_envs: int = 1):
    """A ManagerEnvWrapper as given, or one built from a composed config; -> (env, owned)."""
    if hasattr(env_cfg_or_env, "command") and hasattr(env_cfg_or_env, "env"):
        return env_cfg_or_env, False
    from gear_sonic.envs import create_manager_env

    return create_manager_env(env_cfg_or_env, num_envs=num_envs), True


class GhostRenderer:
    """Renders env 0 of an mjlab env plus a ghost of the current reference pose."""

    def __init__(
        self,
        env,
        width: int = WIDTH,
        height: int = HEIGHT,
        anchor_body: str = "pelvis",
        fast: bool = True,
    ):
        self.env = env
        sim = env.env.sim
        # A copy, so render settings never touch the env's model; no multisampling when fast.
        self.model: mujoco.MjModel = copy.deepcopy(sim.mj_model)
        if fast:
            self.model.vis.quality.offsamples = 0
        # The offscreen framebuffer must hold the requested image size.
        self.model.vis.global_.offwidth = max(int(self.model.vis.global_.offwidth), width)
        self.model.vis.global_.offheight = max(int(self.model.vis.global_.offheight), height)
        self.data = mujoco.MjData(self.model)
        self.ghost = mujoco.MjData(self.model)
        self.robot = env.env.scene["robot"]
        self.free_q = self.robot.indexing.free_joint_q_adr.cpu().numpy()
        self.joint_q = self.robot.indexing.joint_q_adr.cpu().numpy()
        self.renderer = mujoco.Renderer(self.model, height=height, width=width)
        self.option = mujoco.MjvOption()
        self.perturb = mujoco.MjvPerturb()
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = self._body_id(anchor_body)
        for key, value in CAMERA.items():
            setattr(self.camera, key, value)
        # Shadows and reflections cost ~1 s a frame with software (EGL/OSMesa) rendering.
        self.flags = {} if not fast else {
            mujoco.mjtRndFlag.mjRND_SHADOW: False,
            mujoco.mjtRndFlag.mjRND_REFLECTION: False,
        }

    def _body_id(self, name: str) -> int:
        for candidate in (name, f"robot/{name}"):
            body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, candidate)
            if body >= 0:
                return body
        raise KeyError(f"body {name!r} not in the scene model")

    def _sync(self) -> None:
        """Robot: env 0's warp state. Ghost: the reference root pose and joints of env 0."""
        sim_data = self.env.env.sim.data
        self.data.qpos[:] = _numpy(sim_data.qpos[0])
        self.data.qvel[:] = _numpy(sim_data.qvel[0])
        mujoco.mj_forward(self.model, self.data)

        cmd = self.env.command()
        self.ghost.qpos[:] = self.data.qpos
        root = np.concatenate([_numpy(cmd.ref_body_pos_w[0, 0]), _numpy(cmd.ref_body_quat_w[0, 0])])
        self.ghost.qpos[self.free_q] = root
        self.ghost.qpos[self.joint_q] = _numpy(cmd.ref_joint_pos[0])
        mujoco.mj_kinematics(self.model, self.ghost)

    def frame(self) -> np.ndarray:
        """(H, W, 3) uint8 image of the current state."""
        self._sync()
        self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.option)
        scene = self.renderer.scene
        for flag, value in self.flags.items():
            scene.flags[flag] = value
        first = scene.ngeom
        mujoco.mjv_addGeoms(
            self.model, self.ghost, self.option, self.perturb, mujoco.mjtCatBit.mjCAT_DYNAMIC, scene
        )
        for i in range(first, scene.ngeom):
            scene.geoms[i].rgba[:] = GHOST_RGBA
            scene.geoms[i].matid = -1
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def render_clips(
    env_cfg_or_env,
    policy_fn: Callable[[dict], torch.Tensor],
    clip_slots: Sequence[int],
    out_dir: str | Path,
    num_frames: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: float | None = None,
    use_encoder: str | None = None,
) -> list[Path]:
    """Play each resident clip slot from frame 0 under `policy_fn(obs) -> actions`; one mp4 each.

    env_cfg_or_env: a ManagerEnvWrapper, or a composed config to build a 1-env env from (closed
    again afterwards). All envs start on the clip; env 0 is filmed. Returns the mp4 paths.
    Files are named after the clip key made safe (`safe_names`), so a key such as `../x` stays
    inside out_dir; `clips.json` beside them maps each clip key to its file. `use_encoder`
    routes every env through that encoder, as the evaluation that chose the clips did.
    """
    from gear_sonic.eval.evaluate import begin_clips, force_encoder

    import imageio.v2 as imageio

    env, owned = _as_env(env_cfg_or_env)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ghost = GhostRenderer(env, width=width, height=height)
    cmd = env.command()
    all_envs = torch.arange(env.num_envs, device=env.device)
    fps = fps or 1.0 / env.step_dt
    paths, index = [], {}
    try:
        for slot in clip_slots:
            obs = begin_clips(env, torch.full_like(all_envs, int(slot)), use_encoder)
            steps = int(cmd.clip_num_frames[0]) - 1 if num_frames is None else int(num_frames)
            key = cmd.motion.keys[int(cmd.motion.resident_ids[int(slot)])]
            path = path_inside(out_dir, key, ".mp4")
            if path.name in index.values():  # two keys that differ only in unsafe characters
                path = path_inside(out_dir, f"{key}_{int(slot)}", ".mp4")
            with imageio.get_writer(path, fps=fps, macro_block_size=1) as writer:
                writer.append_data(ghost.frame())
                for _ in range(steps):
                    with torch.no_grad():
                        actions = policy_fn(obs)
                    obs, _, done, _ = env.step(actions)
                    if bool(done[0]):
                        break
                    if use_encoder is not None:
                        force_encoder(cmd, all_envs, use_encoder)  # resets resample the mask
                    writer.append_data(ghost.frame())
            paths.append(path)
            index[str(key)] = path.name
    finally:
        ghost.close()
        if owned:
            env.close()
    atomic_write_text(json.dumps(index, indent=2), out_dir / VIDEO_INDEX)
    return paths
