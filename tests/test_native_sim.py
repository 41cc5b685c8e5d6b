"""The native MuJoCo C backend (gear_sonic.sim) against mjlab's MJWarp Simulation, both on CPU.

Parity is measured from the same state and control sequence on small scenes built in code (G1 and
mjlab's Go1 on a plane, PD position targets at the default pose). MuJoCo C (float64) and MJWarp
(float32) differ in solver details, so trajectories agree to a tolerance that grows with the
horizon; the bounds below were measured (see PARITY) with a margin of about 3x.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from mjlab.asset_zoo.robots import get_g1_robot_cfg, get_go1_robot_cfg
from mjlab.envs import manager_based_rl_env
from mjlab.scene import Scene, SceneCfg
from mjlab.sensor import ContactMatch, ContactSensorCfg
from mjlab.sim import MujocoCfg, Simulation, SimulationCfg
from mjlab.terrains import TerrainEntityCfg

from gear_sonic.sim import resolve_backend, simulation_backend
from gear_sonic.sim.errors import UnsupportedFeatureError, UnsupportedFieldError
from gear_sonic.sim.native import NativeSimulation
from gear_sonic.sim.thread_pool import WorldPool, available_cores, resolve_num_threads

DT = 0.005
NUM_ENVS = 2
FEET = {"g1": ("left_ankle_roll_link", "right_ankle_roll_link"),
        "go1": ("FL_calf", "FR_calf", "RL_calf", "RR_calf")}  # fmt: skip
ROBOTS = {"g1": get_g1_robot_cfg, "go1": get_go1_robot_cfg}
# Max |native - warp| allowed after the horizon, ~3x the worst measured (G1 push at 100 substeps:
# qpos 3e-5, qvel 4e-4, body positions 3e-6 m; standing ~1e-6). Beyond ~0.5 s the G1's foot contacts
# switch chaotically (MJWarp's own worlds then disagree with each other), so G1 parity is checked
# over 100 substeps (0.5 s); the Go1 stays within 2e-5 for 1 s, checked over the same 0.5 s.
HORIZON = {"g1": 100, "go1": 100}
BOUNDS = {"qpos": 1e-4, "qvel": 2e-3, "xpos": 1e-4, "xquat": 1e-4}
FORCE_TOLERANCE_N = 0.5


def build(kind: str, robot: str = "g1", num_envs: int = NUM_ENVS, **native_kwargs):
    feet = ContactSensorCfg(
        name="feet",
        primary=ContactMatch(mode="body", pattern=FEET[robot], entity="robot"),
        secondary=None,
        fields=("found", "force"),
        reduce="netforce",
        num_slots=1,
    )
    scene_cfg = SceneCfg(
        num_envs=num_envs,
        env_spacing=2.0,
        terrain=TerrainEntityCfg(terrain_type="plane"),
        entities={"robot": ROBOTS[robot]()},
        sensors=(feet,),
    )
    scene = Scene(scene_cfg, device="cpu")
    sim_cfg = SimulationCfg(
        njmax=250, nconmax=35, mujoco=MujocoCfg(timestep=DT, iterations=10, ls_iterations=20)
    )
    if kind == "native":
        sim = NativeSimulation(num_envs, sim_cfg, spec=scene.spec, device="cpu", **native_kwargs)
    else:
        sim = Simulation(num_envs, sim_cfg, spec=scene.spec, device="cpu")
    scene.initialize(mj_model=sim.mj_model, model=sim.model, data=sim.data)
    return scene, sim


def place_at_default(scene, sim) -> None:
    robot = scene["robot"]
    sim.reset()
    root = robot.data.default_root_state.clone()
    root[:, :3] += scene.env_origins
    robot.write_root_state_to_sim(root)
    robot.write_joint_state_to_sim(robot.data.default_joint_pos, robot.data.default_joint_vel)
    sim.forward()
    scene.update(DT)


def hold_pose(scene, sim, steps: int, push_steps: int = 0, push_body: str | None = None) -> None:
    """PD targets at the default pose; optionally a horizontal force on one body for push_steps."""
    robot = scene["robot"]
    body = robot.find_bodies(push_body)[0][0] if push_body else None
    for step in range(steps):
        robot.set_joint_position_target(robot.data.default_joint_pos)
        if body is not None:
            wrench = torch.zeros(scene.num_envs, 1, 6)
            if step < push_steps:
                wrench[:, 0, 0] = 60.0
                wrench[:, 0, 1] = -30.0
            robot.write_external_wrench_to_sim(wrench[..., :3], wrench[..., 3:], body_ids=[body])
        scene.write_data_to_sim()
        sim.step()
        scene.update(DT)
    sim.forward()
    scene.update(DT)


def rollout(
    kind: str, robot: str, steps: int, push: bool = False, **native_kwargs
) -> dict[str, np.ndarray]:
    scene, sim = build(kind, robot, **native_kwargs)
    place_at_default(scene, sim)
    push_body = {"g1": "torso_link", "go1": "trunk"}[robot] if push else None
    hold_pose(scene, sim, steps, push_steps=20, push_body=push_body)
    feet = scene["feet"].data
    return {
        "qpos": sim.data.qpos.numpy().copy(),
        "qvel": sim.data.qvel.numpy().copy(),
        "xpos": sim.data.xpos.numpy().copy(),
        "xquat": sim.data.xquat.numpy().copy(),
        "found": feet.found.numpy().copy(),
        "force": feet.force.numpy().copy(),
    }


def max_errors(a: dict, b: dict) -> dict[str, float]:
    return {key: float(np.abs(a[key] - b[key]).max()) for key in BOUNDS}


@functools.cache
def cached_rollout(kind: str, robot: str, push: bool) -> dict[str, np.ndarray]:
    return rollout(kind, robot, HORIZON[robot], push=push)


@pytest.mark.parametrize("robot", ["g1", "go1"])
@pytest.mark.parametrize("push", [False, True], ids=["stand", "push"])
def test_native_matches_warp_on_qpos_qvel_and_body_poses(robot, push):
    native, warp = cached_rollout("native", robot, push), cached_rollout("warp", robot, push)
    errors = max_errors(native, warp)
    for key, bound in BOUNDS.items():
        assert errors[key] < bound, (
            f"{robot}: {key} differs by {errors[key]:.2e} (all errors {errors})"
        )
    if push:  # the push moved the robot: parity is not just two robots standing still
        still = cached_rollout("native", robot, False)
        assert np.abs(still["qpos"][:, :2] - native["qpos"][:, :2]).max() > 10 * BOUNDS["qpos"]


@pytest.mark.parametrize("robot", ["g1", "go1"])
def test_foot_contact_sensors_agree_with_warp(robot):
    native, warp = cached_rollout("native", robot, True), cached_rollout("warp", robot, True)
    assert native["found"].sum() > 0, "no foot contact: the test would compare nothing"
    np.testing.assert_array_equal(native["found"], warp["found"])
    np.testing.assert_allclose(native["force"], warp["force"], atol=FORCE_TOLERANCE_N)


def test_dr_write_reaches_only_that_worlds_model():
    scene, sim = build("native", "g1", num_envs=4)
    sim.expand_model_fields(("body_mass", "geom_friction"))
    torso = scene["robot"].find_bodies("torso_link")[0][0]
    torso_id = int(scene["robot"].indexing.body_ids[torso])
    base_mass = float(sim.mj_model.body_mass[torso_id])
    sim.model.body_mass[3, torso_id] = base_mass * 2.0
    sim.model.geom_friction[1, :, 0] = 0.3
    sim.step()
    models = [sim.world_model(world) for world in range(4)]
    masses = [float(m.body_mass[torso_id]) for m in models]
    assert masses == pytest.approx([base_mass, base_mass, base_mass, 2.0 * base_mass])
    frictions = [float(m.geom_friction[:, 0].max()) for m in models]
    assert frictions[1] == pytest.approx(0.3)
    assert min(frictions[0], frictions[2], frictions[3]) > 0.3
    assert sim.mj_model.body_mass[torso_id] == pytest.approx(base_mass)  # the template stays
    sim.expand_model_fields(("body_subtreemass",))  # as mjlab does for fields set_const writes
    before = float(sim.model.body_subtreemass[3, 0])
    sim.recompute_constants(None)
    assert sim.world_model(3).body_subtreemass[0] == pytest.approx(before + base_mass)
    assert float(sim.model.body_subtreemass[3, 0]) == pytest.approx(before + base_mass, rel=1e-6)
    assert float(sim.model.body_subtreemass[2, 0]) == pytest.approx(before, rel=1e-6)
    assert sim.model.body_mass.shape == (4, sim.mj_model.nbody)


def test_reset_env_ids_resets_only_those_worlds():
    scene, sim = build("native", "g1", num_envs=3)
    place_at_default(scene, sim)
    hold_pose(scene, sim, steps=5)
    before = sim.data.qpos.clone()
    sim.data.ctrl[:] = 1.0
    sim.reset(torch.tensor([1]))
    qpos0 = torch.as_tensor(sim.mj_model.qpos0, dtype=torch.float32)
    torch.testing.assert_close(sim.data.qpos[1], qpos0)
    assert float(sim.data.ctrl[1].abs().max()) == 0.0 and float(sim.data.ctrl[0].min()) == 1.0
    torch.testing.assert_close(sim.data.qpos[[0, 2]], before[[0, 2]])
    assert float(sim.data.time[1]) == 0.0 and float(sim.data.time[0]) > 0.0


def test_fixed_seed_gives_bit_identical_runs_for_any_thread_count():
    # Each world is stepped start to end by one thread on its own MjData: no cross-world sums.
    first = rollout("native", "go1", 40, push=True, num_threads=2)
    second = rollout("native", "go1", 40, push=True, num_threads=2)
    single = rollout("native", "go1", 40, push=True, num_threads=1)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        np.testing.assert_array_equal(first[key], single[key], err_msg=key)


def test_non_finite_world_is_reset_and_the_others_go_on(caplog):
    scene, sim = build("native", "go1", num_envs=3)
    place_at_default(scene, sim)
    sim.data.qvel[1, 0] = float("nan")
    with caplog.at_level("WARNING", logger="gear_sonic.sim.native"):
        sim.step()
    assert "worlds [1]" in caplog.text
    assert torch.isfinite(sim.data.qpos).all() and torch.isfinite(sim.data.qvel).all()
    assert sim.nonfinite_resets == 1
    assert float(sim.data.qpos[0, 2]) > 0.2 and float(sim.data.qpos[2, 2]) > 0.2  # still standing


def test_unsupported_features_fail_naming_the_way_out():
    scene, sim = build("native", "go1", num_envs=1)
    with pytest.raises(UnsupportedFeatureError, match="sim.backend=warp"):
        _ = sim.wp_data
    with pytest.raises(UnsupportedFeatureError, match="differential IK.*sim.backend=warp"):
        _ = sim.wp_device  # what mjlab's differential IK action reads first, at start-up
    with pytest.raises(UnsupportedFieldError, match="sim.backend=warp"):
        _ = sim.data.efc_force_not_a_field
    with pytest.raises(UnsupportedFeatureError, match="mesh variants.*sim.backend=warp"):
        NativeSimulation(1, SimulationCfg(), spec=scene.spec, variant_info=[("robot", None)])
    with pytest.raises(UnsupportedFeatureError, match="device 'cuda:0'"):
        NativeSimulation(1, SimulationCfg(), spec=scene.spec, device="cuda:0")


@pytest.mark.parametrize(("worlds", "threads"), [(1, 1), (3, 2), (64, 2), (10, 4)])
def test_world_pool_runs_every_world_exactly_once(worlds, threads):
    pool = WorldPool(worlds, threads)
    seen: list[int] = []
    slots: set[int] = set()
    pool.run(lambda lo, hi, slot: (seen.extend(range(lo, hi)), slots.add(slot)))
    pool.close()
    assert sorted(seen) == list(range(worlds)) and slots <= set(range(threads))


def test_more_threads_than_cores_warns():
    with pytest.warns(UserWarning, match="more than the"):
        resolve_num_threads(available_cores() + 1, num_worlds=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_num_threads(None, num_worlds=64) == min(available_cores(), 64)


def test_backend_swap_lasts_only_for_the_block():
    original = manager_based_rl_env.Simulation
    with simulation_backend("native", "cpu", num_threads=1) as choice:
        assert choice == "native"
        assert manager_based_rl_env.Simulation.func is NativeSimulation
    assert manager_based_rl_env.Simulation is original
    with simulation_backend("warp", "cpu") as choice:
        assert choice == "warp" and manager_based_rl_env.Simulation is original


def test_backend_choice():
    assert resolve_backend("auto", "cpu") == "native"
    assert resolve_backend("auto", "cuda:0") == "warp"
    assert resolve_backend("warp", "cpu") == "warp"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend("native", "cuda:0")
    with pytest.raises(ValueError, match="manager_env.config.sim.backend"):
        resolve_backend("mujoco", "cpu")


def test_fields_first_read_inside_inference_mode_keep_tracking_writes():
    """rsl_rl steps envs under torch.inference_mode: a field first read there must still carry a
    version counter, so later writes reach MuJoCo."""
    import mujoco
    import torch
    from mjlab.sim.sim import SimulationCfg

    from gear_sonic.sim.native import NativeSimulation

    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint name='j' type='slide'/><geom size='0.1'/></body></worldbody>"
        "<actuator><motor joint='j'/></actuator></mujoco>"
    )
    sim = NativeSimulation(2, SimulationCfg(), model, num_threads=1)
    with torch.inference_mode():
        ctrl = sim.data.ctrl
        mass = sim.model.body_mass
        ctrl[1] = 3.0
        sim.step()
    assert not ctrl.is_inference() and not mass.is_inference()
    assert sim.world_datas[0].ctrl[0] == 0.0 and sim.world_datas[1].ctrl[0] == 3.0
