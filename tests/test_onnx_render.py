"""ONNX export of the universal token policy (parity with torch) and offscreen clip rendering."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gear_sonic.envs import create_manager_env
from gear_sonic.eval.exact_replay import apply_exact_replay
from gear_sonic.eval.onnx_export import (
    FSQQuantize,
    export_onnx,
    g1_metadata,
    metadata_from_env,
)
from tests.conftest import CPU_PRESET, REPO_ROOT, compose_config
from tests.test_trl_modules import NUM_ACTIONS, OBS_SHAPES, make_obs

ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e .[test]")

TOLERANCE = 1e-4
BATCH = 6


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    cfg = OmegaConf.load(REPO_ROOT / "config/actor_critic/universal_token/all_mlp_small.yaml")
    actor = instantiate(
        cfg.actor,
        backbone={"obs_shapes": OBS_SHAPES, "num_actions": NUM_ACTIONS},
        num_actions=NUM_ACTIONS,
    ).eval()
    out_dir = tmp_path_factory.mktemp("onnx")
    paths = export_onnx(actor, OBS_SHAPES, out_dir, g1_metadata())
    return actor, out_dir, paths


def _feeds(session, obs: dict) -> dict[str, np.ndarray]:
    flat = {**obs["tokenizer_obs"], **{k: v for k, v in obs.items() if k != "tokenizer_obs"}}
    return {i.name: flat[i.name].numpy() for i in session.get_inputs()}


def _only(obs: dict, column: int) -> dict:
    index = torch.zeros(obs["tokenizer_obs"]["encoder_index"].shape)
    index[:, column] = 1.0
    return {**obs, "tokenizer_obs": {**obs["tokenizer_obs"], "encoder_index": index}}


def test_files_written(exported):
    _, out_dir, paths = exported
    names = sorted(p.name for p in paths)
    expected = ["decoder_g1_dyn.onnx", "metadata.json", "policy_g1.onnx", "policy_smpl.onnx",
                "policy_teleop.onnx"]
    assert names == expected
    assert all((out_dir / n).stat().st_size > 0 for n in names)


def test_fsq_plain_ops_match_library_quantizer(exported):
    module = exported[0].backbone
    z = 3.0 * torch.randn(4096, module.num_tokens, module.token_dim)
    tokens, _ = module.quantizer(z)
    assert torch.equal(FSQQuantize(module.fsq_levels)(z), tokens)


@pytest.mark.parametrize("encoder", ["g1", "teleop", "smpl"])
def test_encoder_policy_matches_torch(exported, encoder):
    actor, out_dir, _ = exported
    module = actor.backbone
    session = ort.InferenceSession(str(out_dir / f"policy_{encoder}.onnx"))
    for seed, batch in ((0, BATCH), (1, 1), (2, 33)):  # the batch dim is dynamic
        obs = make_obs(encoder_index=[[0, 0, 0]] * batch, seed=seed)
        obs = _only(obs, module.encoder_names.index(encoder))
        with torch.no_grad():
            out = module(obs, compute_aux=False)
            expected = actor.act_inference(obs)
        # FSQ rounds: rows whose latent sits next to a rounding boundary may legitimately flip a
        # level between runtimes; compare only rows well away from every boundary.
        fsq = FSQQuantize(module.fsq_levels)
        scaled = torch.tanh(out.latents[encoder] + fsq.shift) * fsq.half_l - fsq.offset
        safe = ((scaled - scaled.round()).abs() < 0.499).flatten(1).all(-1)
        assert safe.float().mean() > 0.5
        actions = session.run(None, _feeds(session, obs))[0]
        assert actions.shape == (batch, NUM_ACTIONS)
        diff = np.abs(actions - expected.numpy())[safe.numpy()].max()
        assert diff < TOLERANCE, (encoder, batch, diff)


def test_decoder_matches_torch_with_same_tokens(exported):
    actor, out_dir, _ = exported
    module = actor.backbone
    session = ort.InferenceSession(str(out_dir / "decoder_g1_dyn.onnx"))
    obs = make_obs(seed=3)
    with torch.no_grad():
        tokens = module(obs, compute_aux=False).tokens
        expected = actor.act_inference({"actor_obs": obs["actor_obs"]}, external_tokens=tokens)
    feeds = {"tokens": tokens.numpy(), "actor_obs": obs["actor_obs"].numpy()}
    actions = session.run(None, feeds)[0]
    assert np.abs(actions - expected.numpy()).max() < TOLERANCE


def test_metadata(exported):
    _, out_dir, _ = exported
    meta = json.loads((out_dir / "metadata.json").read_text())
    keys = ("joint_names", "kp", "kd", "default_joint_pos", "action_scale", "observation_shapes",
            "encoder_names", "fsq_levels", "num_tokens", "token_dim", "models")
    for key in keys:
        assert key in meta, key
    assert len(meta["joint_names"]) == 29 and meta["joint_names"][3] == "left_knee_joint"
    for key in ("kp", "kd", "default_joint_pos", "action_scale"):
        assert len(meta[key]) == 29, key
    assert all(k > 0 for k in meta["kp"]) and all(s > 0 for s in meta["action_scale"])
    assert meta["fsq_levels"] == [16] * 16 and meta["num_tokens"] == 2
    assert meta["observation_shapes"]["actor_obs"] == [930]
    assert meta["observation_shapes"]["tokenizer_obs"]["command_multi_future_nonflat"] == [10, 58]
    assert meta["models"]["decoder_g1_dyn"]["inputs"]["tokens"] == [-1, 2, 16]


def _renderer_or_skip():
    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco

    try:
        mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 16, 16).close()
    except Exception as exc:  # no EGL / OSMesa in this environment
        backend = os.environ["MUJOCO_GL"]
        pytest.skip(f"no MuJoCo offscreen renderer works here (MUJOCO_GL={backend}): {exc}")


def test_render_zero_action_clip(tmp_path, standing_clip):
    _renderer_or_skip()
    from gear_sonic.eval.render import render_clips

    motion = f"manager_env.commands.motion.motion_file={standing_clip}"
    cfg = apply_exact_replay(compose_config(CPU_PRESET, motion), events="none")
    env = create_manager_env(cfg, device="cpu", num_envs=1)

    def zero_policy(obs):
        return torch.zeros(obs["actor_obs"].shape[0], NUM_ACTIONS)

    try:
        meta = metadata_from_env(env)
        paths = render_clips(env, zero_policy, clip_slots=[0], out_dir=tmp_path, num_frames=20)
    finally:
        env.close()
    assert meta["joint_names"] == g1_metadata()["joint_names"]
    assert len(meta["action_scale"]) == 29 and meta["step_dt"] == pytest.approx(0.02)
    assert meta["observation_shapes"]["actor_obs"] == [930]
    assert "encoder_index" in meta["observation_terms"]["tokenizer_obs"]
    assert len(paths) == 1 and paths[0].suffix == ".mp4"
    assert paths[0].stat().st_size > 1000
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(paths[0]))
    meta = next(reader)
    frames = [np.frombuffer(f, dtype=np.uint8).reshape(480, 640, 3) for f in reader]
    assert tuple(meta["size"]) == (640, 480) and len(frames) == 21  # the start frame + 20 steps
    assert frames[0].std() > 1.0  # not a blank image
    index = json.loads((tmp_path / "clips.json").read_text())
    assert index == {standing_clip.stem: paths[0].name}


def test_clip_named_to_escape_renders_inside_the_output_folder(tmp_path, standing_clip):
    _renderer_or_skip()
    from gear_sonic.eval.render import render_clips
    from gear_sonic.utils.motion_lib.readers import read_motion_file
    from gear_sonic.utils.motion_lib.writers import write_sonic_pkl

    clip = read_motion_file(standing_clip, num_joints=NUM_ACTIONS)[0]
    clip.key = "../escape"
    motions = tmp_path / "motions"
    motions.mkdir()
    write_sonic_pkl(motions / "evil_names.pkl", [clip])
    out_dir = tmp_path / "deep" / "videos"
    motion = f"manager_env.commands.motion.motion_file={motions}"
    cfg = apply_exact_replay(compose_config(CPU_PRESET, motion), events="none")
    env = create_manager_env(cfg, device="cpu", num_envs=1)
    try:
        assert env.command().motion.keys == ["../escape"]
        policy = lambda obs: torch.zeros(obs["actor_obs"].shape[0], NUM_ACTIONS)  # noqa: E731
        paths = render_clips(env, policy, [0], out_dir, num_frames=2, width=64, height=48,
                             use_encoder="teleop")
        cmd = env.command()
        assert cmd.encoder_mask[0].tolist() == [float(n == "teleop") for n in cmd.encoder_names]
    finally:
        env.close()
    assert [p.parent for p in paths] == [out_dir] and paths[0].is_file()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([paths[0].name, "clips.json"])
    assert not list((tmp_path / "deep").glob("escape*")) and not list(tmp_path.glob("escape*"))
    assert json.loads((out_dir / "clips.json").read_text()) == {"../escape": paths[0].name}
