"""Teacher-student distillation (DistillationTrainer, go2_velocity_student presets): the student's
inputs hold no privileged term, a wrong teacher checkpoint fails naming the mismatch, a
2-iteration run writes its files and resumes, and its DAgger loss falls on a fixed teacher."""

from __future__ import annotations

import csv

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gear_sonic.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gear_sonic.train_agent_trl import run_training
from gear_sonic.trl.trainer.distillation_config import check_teacher_state, distillation_settings
from tests.conftest import compose_config

STUDENT_CPU = "+exp=manager/locomotion/go2_velocity_student_cpu"
TINY_STUDENT = (
    "num_envs=4",
    "algo.config.num_mini_batches=2",
    "algo.config.num_steps_per_env=8",
    "algo.config.num_learning_epochs=1",
    "callbacks.model_save.save_interval=1",
    "callbacks.model_save.last_interval=1",
)
TEACHER_OBS = {"actor_obs": (53,), "critic_obs": (53,)}


def _teacher_actor(cfg, obs_shapes=TEACHER_OBS):
    return instantiate(
        cfg.distillation.teacher.actor,
        backbone={"obs_shapes": obs_shapes, "num_actions": 12},
        num_actions=12,
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    """A fixed (random, but with actions of a useful size) teacher for the Go2 env."""
    cfg = compose_config(STUDENT_CPU)
    torch.manual_seed(0)
    teacher = _teacher_actor(cfg)
    with torch.no_grad():
        teacher.backbone.mlp[-1].weight.mul_(20.0)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_checkpoint({"actor": teacher.state_dict(), "iteration": 7}, path)
    return path


def test_student_reads_no_privileged_term(tmp_path):
    cfg = compose_config(STUDENT_CPU)
    student_terms = set(cfg.manager_env.observations.student_obs.terms)
    assert student_terms.isdisjoint({"base_lin_vel", "foot_friction", "base_mass"})
    assert list(cfg.actor_critic.actor.backbone.input_groups) == ["student_obs"]
    assert list(cfg.distillation.teacher.actor.backbone.input_groups) == ["actor_obs"]
    fake = tmp_path / "t.pt"
    fake.write_bytes(b"")
    node = OmegaConf.to_container(cfg.distillation, resolve=False)
    node.pop("_target_"), node.pop("_recursive_")
    node.update(teacher_checkpoint=str(fake), teacher=cfg.distillation.teacher)
    node.update(observations=cfg.manager_env.observations)
    node["student_input_groups"] = ["student_obs"]
    settings = distillation_settings(**node)
    settings.validate()
    assert settings.student_group == "student_obs"
    # A privileged term under another name is caught by its function.
    obs = OmegaConf.to_container(cfg.manager_env.observations, resolve=True)
    obs["student_obs"]["terms"]["lin_vel"] = {"func": "base_lin_vel"}
    with pytest.raises(ValueError, match=r"student_obs\.terms\.lin_vel is privileged"):
        distillation_settings(**{**node, "observations": obs}).validate()
    # Reading the teacher's group is refused too.
    with pytest.raises(ValueError, match=r"not \['actor_obs'\]"):
        both = ["student_obs", "actor_obs"]
        distillation_settings(**{**node, "student_input_groups": both}).validate()
    with pytest.raises(ValueError, match=r"add \+teacher_checkpoint=PATH"):
        distillation_settings(**{**node, "teacher_checkpoint": None}).validate()


def test_teacher_of_another_task_or_architecture_is_named(tmp_path):
    cfg = compose_config(STUDENT_CPU)
    teacher = _teacher_actor(cfg)
    smaller = _teacher_actor(cfg, {"actor_obs": (45,), "critic_obs": (45,)})
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    with pytest.raises(
        CheckpointError, match=r"backbone\.mlp\.0\.weight.*\(512, 45\).*\(512, 53\)"
    ):
        check_teacher_state(smaller.state_dict(), teacher, TEACHER_OBS, path)
    # With the teacher run's config.yaml beside it, the observation terms are compared.
    trained = OmegaConf.create(
        {"manager_env": {"observations": {"actor_obs": {"terms": {"base_ang_vel": {}, "x": {}}}}}}
    )
    OmegaConf.save(trained, path.parent / "config.yaml")
    ours = {"actor_obs": ["base_ang_vel", "joint_pos"]}
    with pytest.raises(
        CheckpointError, match=r"'actor_obs'.*missing \['x'\], extra \['joint_pos'\]"
    ):
        check_teacher_state(teacher.state_dict(), teacher, TEACHER_OBS, path, ours)
    OmegaConf.save(
        OmegaConf.create({"manager_env": {"observations": {"policy": {}}}}),
        path.parent / "config.yaml",
    )
    with pytest.raises(CheckpointError, match="no observation group 'actor_obs'"):
        check_teacher_state(teacher.state_dict(), teacher, TEACHER_OBS, path)


def test_student_run_writes_its_files_resumes_and_its_dagger_loss_falls(
    tmp_path, teacher_checkpoint
):
    overrides = (
        STUDENT_CPU,
        *TINY_STUDENT,
        f"+teacher_checkpoint={teacher_checkpoint}",
        "algo.config.num_learning_epochs=6",
        "algo.config.num_steps_per_env=12",
        "manager_env.config.episode_length_s=0.1",
        f"experiment_dir={tmp_path / 'exp'}",
    )
    exp_dir = run_training(compose_config(*overrides, "algo.config.num_learning_iterations=2"))
    for name in ("config.yaml", "last.pt", "model_step_000002.pt", "metrics.csv"):
        assert (exp_dir / name).is_file(), name
    state = load_checkpoint(exp_dir / "last.pt")
    assert state["iteration"] == 2
    assert state["distillation"]["teacher_checkpoint"] == str(teacher_checkpoint)
    assert state["actor"]["backbone.mlp.0.weight"].shape == (512, 225)  # student_obs only
    exp_dir = run_training(
        compose_config(
            *overrides[:-1],
            f"experiment_dir={exp_dir}",
            "+resume=True",
            "algo.config.num_learning_iterations=3",
        )
    )
    with (exp_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    for key in (
        "distill/action_mse",
        "Episode_Reward/track_lin_vel_xy_exp",
        "Episode_Reward/track_ang_vel_z_exp",
        "distill/teacher_forcing",
    ):
        assert rows[-1][key] != "", key
    assert float(rows[0]["distill/teacher_forcing"]) == 0.5
    # The student (12 updates an iteration) closes in on the fixed teacher, across the resume.
    mse = [float(r["distill/action_mse"]) for r in rows]
    assert mse[2] < 0.5 * mse[0], mse
    assert load_checkpoint(exp_dir / "last.pt")["iteration"] == 3


def test_compare_policies_plays_both_on_the_teacher_runs_sweep(tmp_path, capsys, teacher_checkpoint):
    from scripts.compare_policies import main as compare_main

    overrides = (STUDENT_CPU, *TINY_STUDENT, "algo.config.num_learning_iterations=1",
                 "manager_env.config.episode_length_s=0.1", f"experiment_dir={tmp_path / 'exp'}")
    cfg = compose_config(*overrides, f"+teacher_checkpoint={teacher_checkpoint}")
    exp_dir = run_training(cfg)
    last = str(exp_dir / "last.pt")
    ratio = compare_main([last, last, "--num-envs", "2", "--duration-s", "0.2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "ratio student/teacher: 1.00" and ratio == pytest.approx(1.0)
    roles = [line.split(":")[0] for line in out if line.startswith(("teacher:", "student:"))]
    assert roles == ["teacher", "student"]
