"""The torch-free deploy loop (gear_sonic/deploy): observation contract against the env, the CLI
on a tiny exported policy (latency, real-time factor, no torch/mjlab/warp), bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gear_sonic.envs import create_manager_env
from gear_sonic.eval.evaluate import begin_clips
from gear_sonic.eval.exact_replay import apply_exact_replay
from gear_sonic.trl.builders import build_policy_and_value
from tests.conftest import CPU_PRESET, REPO_ROOT, SAMPLE_MOTIONS, compose_config

pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e .[test]")

CLIP = SAMPLE_MOTIONS / "walk_forward_medium.npz"  # has SMPL keypoints: every encoder runs
STAND = SAMPLE_MOTIONS / "stand_idle.npz"
CLIPS = (STAND, CLIP)  # resident slots 0 and 1 (the library sorts files by name)
CLI = REPO_ROOT / "gear_sonic" / "deploy" / "run_policy.py"
CONTRACT_TOLERANCE = 1e-5
CONTRACT_STEPS = 12
# Closed-loop parity, measured on this CPU: the same frame reached (stand_idle 58/300,
# walk_forward_medium 58/280) and mpjpe_g equal to 0.01 mm. Allowed: one frame, 1 mm.
FRAMES_TOLERANCE = 1
MPJPE_TOLERANCE_MM = 1.0
ENCODERS = ("g1", "teleop", "smpl")
SUMMARY = re.compile(r"^latency p50 (\S+) ms, p99 (\S+) ms, real-time factor (\S+)$")
EXIT_BAD_INPUT = 2


@pytest.fixture(scope="module")
def env_and_bundle(tmp_path_factory):
    """A 1-env evaluation env (exact replay, no events, no observation noise) and a deploy
    bundle of a randomly initialised policy exported from it."""
    from gear_sonic.deploy.bundle import write_deploy_bundle

    motions = tmp_path_factory.mktemp("motions")
    for clip in CLIPS:
        shutil.copy(clip, motions / clip.name)
    cfg = apply_exact_replay(
        compose_config(CPU_PRESET, f"manager_env.commands.motion.motion_file={motions}"),
        events="none")
    for group in cfg.manager_env.observations.values():
        group.enable_corruption = False
    env = create_manager_env(cfg, device="cpu", num_envs=1)
    torch.manual_seed(0)
    actor, _ = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    bundle = tmp_path_factory.mktemp("deploy")
    write_deploy_bundle(actor.eval(), env, bundle)
    env.actor, env.train_cfg = actor, cfg  # for the parity and export tests
    yield env, bundle
    env.close()


def _env_inputs(obs: dict) -> dict[str, np.ndarray]:
    flat = {k: v for k, v in obs.items() if k != "tokenizer_obs"}
    flat.update(obs["tokenizer_obs"])
    return {k: v.detach().cpu().numpy() for k, v in flat.items()}


@pytest.mark.parametrize("encoder", ENCODERS)
def test_observation_contract_matches_env(env_and_bundle, encoder):
    """Same robot state and frame in both: every ONNX input equal within 1e-5, step after step
    (history included), with actions that keep the robot on the clip."""
    from gear_sonic.deploy.loop import DeployLoop

    env, bundle = env_and_bundle
    loop = DeployLoop(bundle, CLIP, encoder=encoder)
    loop.start()
    obs = begin_clips(env, torch.tensor([CLIPS.index(CLIP)]), use_encoder=encoder)
    generator = torch.Generator().manual_seed(1)
    worst = {}
    for step in range(CONTRACT_STEPS):
        sim = env.env.sim.data
        loop.robot.set_state(sim.qpos[0].cpu().numpy(), sim.qvel[0].cpu().numpy())
        loop.frame = int(env.command().frame[0])
        deploy = loop.observe()
        expected = _env_inputs(obs)
        for name, value in deploy.items():
            assert value.shape == expected[name].shape, name
            worst[name] = max(worst.get(name, 0.0), float(np.abs(value - expected[name]).max()))
        action = env.reference_actions() + 0.3 * torch.randn(1, env.num_actions,
                                                             generator=generator)
        obs, _, done, _ = env.step(action)
        assert not bool(done[0]), f"the env reset at step {step}; the comparison needs one clip"
        loop.last_action[:] = action[0].clamp(-loop.contract.action_clip,
                                              loop.contract.action_clip).numpy()
    print(encoder, {name: f"{diff:.1e}" for name, diff in worst.items()})
    assert set(worst) == set(loop.builder.input_names) and "actor_obs" in worst
    assert max(worst.values()) <= CONTRACT_TOLERANCE, worst


def test_physics_step_matches_env(env_and_bundle):
    """From the same state and action, one control step of robot.mjb lands where the env does."""
    from gear_sonic.deploy.loop import DeployLoop

    env, bundle = env_and_bundle
    loop = DeployLoop(bundle, CLIP)
    loop.start()
    begin_clips(env, torch.tensor([CLIPS.index(CLIP)]))
    sim = env.env.sim.data
    loop.robot.set_state(sim.qpos[0].cpu().numpy(), sim.qvel[0].cpu().numpy())
    action = env.reference_actions() + 0.2
    env.step(action)
    loop.apply(action[0].numpy().astype(np.float64))
    diff = np.abs(loop.robot.data.qpos - sim.qpos[0].cpu().numpy()).max()
    assert diff < 1e-4, diff


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_closed_loop_parity_with_evaluation(env_and_bundle, clip):
    """The same policy on the same clip: evaluation's rollout (torch, the env) and the deploy
    loop (ONNX, robot.mjb) reach the same frame and track with the same error."""
    from gear_sonic.deploy.loop import DeployLoop
    from gear_sonic.eval.evaluate import _play_round

    env, bundle = env_and_bundle
    rows, _ = _play_round(env, env.actor, torch.tensor([CLIPS.index(clip)]), "g1")
    expected = rows[0]
    result = DeployLoop(bundle, clip, encoder="g1").run()
    print(f"{clip.stem}: eval {expected['frames_reached']}/{expected['frames']} frames, "
          f"mpjpe_g {expected['mpjpe_g']:.4f} mm; deploy {result.frames_reached}/{result.frames}"
          f", mpjpe_g {result.mpjpe_g_mm:.4f} mm")
    assert result.frames == expected["frames"]
    assert abs(result.frames_reached - expected["frames_reached"]) <= FRAMES_TOLERANCE
    assert abs(result.mpjpe_g_mm - expected["mpjpe_g"]) <= MPJPE_TOLERANCE_MM


class ReplayPolicy(torch.nn.Module):
    """Actions whose joint targets are the current reference joints (PD replay), read from the
    g1 encoder's first future frame: a policy whose motion follows the clip (open loop, so it
    tips over after about a second of walking), unlike the random one."""

    def __init__(self, default_joint_pos, action_scale):
        super().__init__()
        self.register_buffer("default", torch.as_tensor(default_joint_pos, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(action_scale, dtype=torch.float32))

    def forward(self, command_multi_future_nonflat, motion_anchor_ori_b_mf_nonflat, actor_obs):
        joints = command_multi_future_nonflat[:, 0, : self.default.shape[0]]
        return (joints - self.default) / self.scale

    def act_inference(self, obs):
        tokens = obs["tokenizer_obs"]
        return self(tokens["command_multi_future_nonflat"],
                    tokens["motion_anchor_ori_b_mf_nonflat"], obs["actor_obs"])


def test_closed_loop_parity_along_a_replayed_clip(env_and_bundle, tmp_path):
    from gear_sonic.deploy.loop import DeployLoop
    from gear_sonic.eval.evaluate import _play_round

    env, bundle = env_and_bundle
    folder = _copy_bundle(bundle, tmp_path)
    meta = json.loads((folder / "metadata.json").read_text())
    policy = ReplayPolicy(meta["default_joint_pos"], meta["action_scale"]).eval()
    names = list(meta["models"]["policy_g1"]["inputs"])
    example = tuple(torch.zeros(1, *meta["models"]["policy_g1"]["inputs"][n][1:]) for n in names)
    torch.onnx.export(policy, example, str(folder / "policy_g1.onnx"), input_names=names,
                      output_names=["actions"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch"} for n in [*names, "actions"]})
    rows, _ = _play_round(env, policy, torch.tensor([CLIPS.index(CLIP)]), "g1")
    expected = rows[0]
    result = DeployLoop(folder, CLIP, encoder="g1").run()
    print(f"replay: eval {expected['frames_reached']}/{expected['frames']} frames, mpjpe_g "
          f"{expected['mpjpe_g']:.4f} mm; deploy {result.frames_reached}/{result.frames}, "
          f"mpjpe_g {result.mpjpe_g_mm:.4f} mm")
    assert expected["frames_reached"] > 50  # it walks along the clip for over a second
    assert abs(result.frames_reached - expected["frames_reached"]) <= FRAMES_TOLERANCE
    assert abs(result.mpjpe_g_mm - expected["mpjpe_g"]) <= MPJPE_TOLERANCE_MM


def test_export_onnx_only_writes_a_deploy_folder_the_loop_runs(env_and_bundle, tmp_path):
    """`eval_agent_trl.py +export_onnx_only=true` leaves deploy/ beside the ONNX files, and
    run_policy.py runs that folder as is."""
    from gear_sonic.checkpoint import save_checkpoint
    from gear_sonic.eval_agent_trl import run_eval

    env = env_and_bundle[0]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    OmegaConf.save(env.train_cfg, run_dir / "config.yaml")
    checkpoint = save_checkpoint({"actor": env.actor.state_dict(), "iteration": 3},
                                 run_dir / "last.pt")
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose("base_eval", overrides=[f"+checkpoint={checkpoint}",
                                              "+export_onnx_only=true", "++device=cpu"])
    out_dir = run_eval(cfg)
    deploy = out_dir / "deploy"
    names = sorted(p.name for p in deploy.iterdir())
    assert names == ["README.md", "decoder_g1_dyn.onnx", "metadata.json", "policy_g1.onnx",
                     "policy_smpl.onnx", "policy_teleop.onnx", "robot.mjb"]
    readme = (deploy / "README.md").read_text()
    assert "run_policy.py" in readme and "| actions | last_action | [29] | 10 |" in readme
    result = _run_cli(deploy, "--motion", STAND, "--steps", 10, "--encoder", "teleop")
    assert result.returncode == 0, result.stderr[-2000:]
    assert SUMMARY.match(result.stdout.strip().splitlines()[-1])


def _run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-X", "importtime", str(CLI), *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def test_cli_runs_clip_torch_free_and_reports_latency(env_and_bundle):
    _, bundle = env_and_bundle
    result = _run_cli(bundle, "--motion", CLIP, "--steps", 20, "--keep-going")
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    match = SUMMARY.match(last)
    assert match, last
    p50, p99, rtf = (float(v) for v in match.groups())
    assert 0 < p50 <= p99 and rtf > 0
    assert "20 steps" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    heavy = sorted(m for m in imported if m.split(".")[0] in ("torch", "mjlab", "warp"))
    assert not heavy, heavy
    assert "onnxruntime" in imported and "mujoco" in imported


def test_cli_writes_video(env_and_bundle, tmp_path):
    from tests.test_onnx_render import _renderer_or_skip

    _renderer_or_skip()
    _, bundle = env_and_bundle
    video = tmp_path / "run.mp4"
    result = _run_cli(bundle, "--motion", CLIP, "--steps", 5, "--keep-going", "--video", video)
    assert result.returncode == 0, result.stderr[-2000:]
    assert video.stat().st_size > 1000


# ---------------------------------------------------------------- bad input: one line, exit 2
def _copy_bundle(bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def _edit_metadata(folder, edit):
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _assert_bad_input(result, *fragments):
    assert result.returncode == EXIT_BAD_INPUT, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


def test_bad_input_missing_metadata(env_and_bundle, tmp_path):
    folder = _copy_bundle(env_and_bundle[1], tmp_path)
    (folder / "metadata.json").unlink()
    _assert_bad_input(_run_cli(folder, "--motion", CLIP), "metadata.json", "missing",
                      "export_onnx_only")


def test_bad_input_metadata_from_another_robot(env_and_bundle, tmp_path):
    folder = _copy_bundle(env_and_bundle[1], tmp_path)

    def go2(meta):
        legs = [f"{side}_{part}_joint" for side in ("FL", "FR", "RL", "RR")
                for part in ("hip", "thigh", "calf")]
        meta.update(robot="go2", joint_names=legs, kp=[20.0] * 12, kd=[0.5] * 12,
                    default_joint_pos=[0.0] * 12, action_scale=[0.25] * 12)

    _edit_metadata(folder, go2)
    _assert_bad_input(_run_cli(folder, "--motion", CLIP), "metadata.json", "'go2'",
                      "does not match")


def test_bad_input_onnx_size_disagrees_with_contract(env_and_bundle, tmp_path):
    folder = _copy_bundle(env_and_bundle[1], tmp_path)

    def longer_history(meta):
        meta["observation_contract"]["actor_obs"]["terms"][0]["history_length"] = 11

    _edit_metadata(folder, longer_history)
    _assert_bad_input(_run_cli(folder, "--motion", CLIP), "policy_g1.onnx", "'actor_obs'",
                      "[930]", "[933]")


def test_bad_input_motion_joints_do_not_match(env_and_bundle, tmp_path):
    with np.load(CLIP) as npz:
        data = {k: npz[k] for k in npz.files}
    data["joint_names"] = np.array([f"joint_{i}" for i in range(len(data["joint_names"]))])
    clip = tmp_path / "other_robot.npz"
    np.savez(clip, **data)
    _assert_bad_input(_run_cli(env_and_bundle[1], "--motion", clip), "other_robot.npz",
                      "joints do not match")


# ---------------------------------------------------------------- robustness benchmark, 2 levels
# Seed 9 draws the push at step 16 of 40: time to fall before the trial ends.
ROBUST_SPEC = {"perturbations": {"push": [0.0, 3.0]}, "trials": 1, "max_steps": 40, "seed": 9}


class ZeroPolicy:
    """Zero actions: the PD controller holds the reference (the actions are reference-relative)."""

    def __init__(self, env):
        self.shape = (env.num_envs, env.num_actions)

    def act_inference(self, obs):
        return torch.zeros(self.shape)


def test_robustness_env_and_deploy_backends_agree_and_write_keys(env_and_bundle, tmp_path):
    """Two push levels on the training env and on the deploy loop, the same tiny policy: the
    same falls; keys in metrics_eval.json; the harder push lowers the zero policy's survival."""
    from gear_sonic.eval import robustness

    env, bundle = env_and_bundle
    spec = robustness.parse_spec(ROBUST_SPEC)
    on_env = robustness.run_env(env, env.actor, spec)
    on_deploy = robustness.run_deploy(bundle, [STAND], spec)
    for a, b in zip(on_env, on_deploy):
        assert a.completion == b.completion
        assert abs(a.survival - b.survival) <= FRAMES_TOLERANCE / spec.max_steps
    path = robustness.write_result(tmp_path / "metrics_eval.json", on_deploy, {"backend": "deploy"})
    written = json.loads(path.read_text())
    assert 0.0 <= written["robustness/score"] <= 1.0
    assert {"robustness/push/0/completion", "robustness/push/3/survival"} <= set(written)

    nominal, pushed = robustness.run_env(env, ZeroPolicy(env), spec)
    print(f"zero policy survival: push 0 {nominal.survival:.3f}, push 3 {pushed.survival:.3f}")
    assert pushed.survival < nominal.survival
