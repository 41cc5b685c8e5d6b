"""Export side: write a deploy folder that `run_policy.py` runs as is.

    paths = write_deploy_bundle(actor, env, out_dir)

writes policy_<encoder>.onnx, decoder_g1_dyn.onnx, metadata.json (robot, gains, observation
contract) and robot.mjb (the env's compiled scene: robot, actuators, floor, solver options,
before any randomisation). This module imports torch only inside `write_deploy_bundle`, so the
deploy loop never loads it; the env is any built `ManagerEnvWrapper`.
"""

from __future__ import annotations

from pathlib import Path

import mujoco

MODEL_FILE = "robot.mjb"


def write_robot_model(env, out_dir: str | Path) -> dict:
    """Save the nominal compiled scene as robot.mjb; returns the metadata keys that name it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = env.env.scene.compile()
    env.env.cfg.sim.mujoco.apply(model)  # timestep and solver settings, as the env sets them
    mujoco.mj_saveModel(model, str(out_dir / MODEL_FILE), None)
    robot = env.env.scene["robot"]
    first_joint = robot.joint_names[0]
    prefix = next(
        model.joint(j).name[: -len(first_joint)]
        for j in range(model.njnt) if model.joint(j).name.endswith(first_joint)
    )
    return {"model_file": MODEL_FILE, "model_name_prefix": prefix}


def write_deploy_bundle(actor, env, out_dir: str | Path) -> list[Path]:
    """ONNX models + metadata.json (with the deploy contract) + robot.mjb in `out_dir`."""
    from gear_sonic.eval.onnx_export import export_onnx, metadata_from_env

    meta = metadata_from_env(env)
    meta.update(write_robot_model(env, out_dir))
    paths = export_onnx(actor, env.observation_shapes, out_dir, metadata=meta)
    return [*paths, Path(out_dir) / MODEL_FILE]
