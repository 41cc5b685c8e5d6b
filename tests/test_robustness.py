"""Robustness benchmark pieces that need no env: settings checks, scoring, the report table and
the script's bad-input exit. The two backends run on a tiny policy in tests/test_deploy_loop.py
(test_robustness_env_and_deploy_backends_agree_and_write_keys), beside the env they share."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gear_sonic.eval import robustness
from gear_sonic.eval.report import render_html
from tests.conftest import REPO_ROOT


def test_default_config_parses_and_every_kind_has_a_nominal_level():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "config/robustness/default.yaml"))
    spec = robustness.parse_spec(cfg)
    kinds = {level.kind for level in spec.levels}
    assert kinds == set(robustness.KINDS)
    for kind in kinds:
        assert robustness.NOMINAL[kind] in [lv.value for lv in spec.levels if lv.kind == kind]


@pytest.mark.parametrize(("perturbations", "message"), [
    ({"wind": [1.0]}, "perturbations.wind: unknown perturbation; choose from"),
    ({"push": []}, "perturbations.push: the level list is empty"),
    ({"delay": [0, 1.5]}, "perturbations.delay: level 1.5 is not a whole number"),
    ({"mass": [-2.0]}, "perturbations.mass: level -2.0 is not a finite number >= 0"),
    ({}, "perturbations: give a mapping"),
])
def test_bad_settings_name_the_key(perturbations, message):
    with pytest.raises(robustness.RobustnessConfigError, match=message.replace(".", r"\.")):
        robustness.parse_spec({"perturbations": perturbations})


def test_completion_survival_and_score():
    push0, push2 = robustness.Level("push", 0.0), robustness.Level("push", 2.0)
    mass = robustness.Level("mass", 10.0)
    fell = np.array([False, True, True, False])
    r = robustness.level_result(push2, fell, steps=np.array([50, 25, 0, 50]),
                                horizon=np.full(4, 50))
    assert r.completion == 0.5 and r.survival == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    ok = robustness.level_result(push0, np.zeros(4, bool), np.full(4, 50), np.full(4, 50))
    none = robustness.level_result(mass, np.ones(4, bool), np.zeros(4), np.full(4, 50))
    # Each kind weighs the same: push (1.0 + 0.5) / 2 and mass 0.0 -> 0.375.
    assert robustness.score([ok, r, none]) == pytest.approx(0.375)
    keys = robustness.metrics([ok, r, none])
    assert keys["robustness/push/2/completion"] == 0.5 and keys["robustness/mass/10/survival"] == 0


def test_report_shows_the_robustness_table(tmp_path):
    levels = [robustness.Level("push", v) for v in (0.0, 1.5)] + [robustness.Level("delay", 2)]
    results = [robustness.level_result(lv, np.array([i > 0]), np.array([10]), np.array([20]))
               for i, lv in enumerate(levels)]
    folder = tmp_path / "eval" / "step_000004" / "robustness-env"
    robustness.write_result(folder / "metrics_eval.json", results,
                            {"iteration": 4, "backend": "env"})
    page = render_html(tmp_path)
    assert "Robustness: step 4 · robustness-env &middot; score 0.25 (env backend)" in page
    assert '<td class="key">push</td><td>1.5</td><td>0</td><td>0.5</td>' in page
    assert page.index('<td class="key">push</td>') < page.index('<td class="key">delay</td>')


def test_script_bad_input_is_one_line_exit_2():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "robustness.py"),
                             "perturbations.friction=[]"], capture_output=True, text=True,
                            check=False, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines == [("error: perturbations.friction: the level list is empty or not a list; "
                      "give levels, e.g. [1, ...], or null to leave the kind out")]


FAKE_METRICS = '''
import json, sys
from pathlib import Path
args = dict(a.lstrip("+").split("=", 1) for a in sys.argv[1:])
out = Path(args["output_dir"])
out.mkdir(parents=True, exist_ok=True)
payload = {"aggregate": {"success_rate": 1.0}, "clips": []}
if "robustness" in out.name:
    payload = {"robustness/score": 0.625, "robustness/push/1/completion": 0.625}
(out / "metrics_eval.json").write_text(json.dumps(payload))
'''


def test_checkpoint_monitor_runs_robustness_when_asked(tmp_path):
    """eval_exp.py with run_robustness=true: the command writes step_X/robustness-env/ and its
    score joins the step's summary; off by default."""
    from hydra import compose, initialize_config_dir

    from gear_sonic.eval_exp import CheckpointEvaluator

    fake = tmp_path / "fake_eval.py"
    fake.write_text(FAKE_METRICS)
    command = f'["{{python}}","{fake}","+checkpoint={{checkpoint}}","++output_dir={{output_dir}}"]'
    robust = f'["{{python}}","{fake}","+checkpoint={{checkpoint}}","output_dir={{robustness_dir}}"]'
    exp = tmp_path / "exp"
    exp.mkdir()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        default = compose("eval_exp", overrides=[f"experiment_dir={exp}"])
        cfg = compose("eval_exp", overrides=[
            f"experiment_dir={exp}", "num_render_videos=0", "run_robustness=true",
            f"metrics_command={command}", f"robustness_command={robust}"])
    assert default.run_robustness is False
    aggregate = CheckpointEvaluator(cfg).evaluate_once(3, tmp_path / "model_step_000003.pt")
    assert aggregate == {"success_rate": 1.0, "robustness/score": 0.625}
    assert (exp / "eval" / "step_000003" / "robustness-env" / "metrics_eval.json").is_file()


def test_deploy_perturbations_apply_and_restore():
    """Friction scale and added mass land in the MuJoCo model and go back to nominal; the
    noise leaves selector inputs alone and scales with each term's RMS."""
    import mujoco

    from gear_sonic.deploy.contract import DeployContract, ObsGroup, ObsTerm
    from gear_sonic.deploy.perturb import ModelPerturbation, add_obs_noise

    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><geom type="plane" size="1 1 1"/><body name="torso">'
        '<freejoint/><geom type="box" size=".1 .1 .1" mass="2"/></body></worldbody></mujoco>')
    data = mujoco.MjData(model)
    perturbation = ModelPerturbation(model, data, "torso")
    perturbation.apply("friction", 0.25)
    assert np.allclose(model.geom_friction[:, 0], 0.25)
    perturbation.apply("mass", 3.0)  # replaces the friction level: one kind at a time
    assert model.body_mass[1] == pytest.approx(5.0) and np.allclose(model.geom_friction[:, 0], 1)
    perturbation.restore()
    assert model.body_mass[1] == pytest.approx(2.0)

    terms = tuple(ObsTerm(name, name, {}, (3,), 0, None, None) for name in ("joint_pos", "big"))
    group = ObsGroup("actor_obs", True, terms)
    contract = DeployContract(None, "r", [], *[np.zeros(0)] * 4, None, False, 0.005, 4,
                              {"actor_obs": group}, {}, {}, [])
    feeds = {"actor_obs": np.array([[0.1, -0.1, 0.1, 100.0, -100.0, 100.0]], np.float32),
             "encoder_index": np.array([[1.0, 0.0, 0.0]], np.float32)}
    noisy = add_obs_noise(feeds, contract, 0.1, np.random.default_rng(0))
    assert np.array_equal(noisy["encoder_index"], feeds["encoder_index"])
    change = np.abs(noisy["actor_obs"] - feeds["actor_obs"])[0]
    assert 0 < change[:3].max() < 0.1 and 1.0 < change[3:].max() < 100.0
