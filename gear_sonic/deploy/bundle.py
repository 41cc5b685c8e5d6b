"""Export side: write a deploy folder that `run_policy.py` runs as is.

    paths = write_deploy_bundle(actor, env, out_dir)

writes policy_<encoder>.onnx, decoder_g1_dyn.onnx, metadata.json (robot, gains, contract),
robot.mjb (the env's compiled scene: robot, actuators, floor, solver options, before any
randomisation) and README.md (the contract in words, from metadata.json). Torch is imported
only inside `write_deploy_bundle`, so the deploy loop never loads it; `env` is any built
`ManagerEnvWrapper`.
"""

from __future__ import annotations

import json
from pathlib import Path

import mujoco

MODEL_FILE = "robot.mjb"
README_FILE = "README.md"


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
    readme = Path(out_dir) / README_FILE
    readme.write_text(contract_readme(json.loads((Path(out_dir) / "metadata.json").read_text())))
    return [*paths, Path(out_dir) / MODEL_FILE, readme]


def contract_readme(meta: dict) -> str:
    """The deploy contract of one bundle in words: run command, models, inputs, terms, robot."""
    sim, command = meta["sim"], meta["command"]
    control_hz = 1.0 / (sim["physics_dt"] * sim["decimation"])
    offset = "the current reference" if meta.get("reference_relative_actions") else \
        "default_joint_pos"
    kind = command.get("kind")
    velocity, goal = kind == "velocity", kind == "goal"
    options = "[--steps N] [--video out.mp4] [--viewer]"
    run = ("    python gear_sonic/deploy/run_policy.py THIS_FOLDER --command VX,VY,WZ "
           f"[--commands schedule.csv] {options}" if velocity else
           f"    python gear_sonic/deploy/run_policy.py THIS_FOLDER --goal X,Y {options}" if goal
           else "    python gear_sonic/deploy/run_policy.py THIS_FOLDER --motion CLIP.npz "
           f"[--encoder g1|teleop|smpl] {options}")
    actions = (f"Physics {1.0 / sim['physics_dt']:g} Hz, control {control_hz:g} Hz. Joint target "
               f"= {offset} + action_scale * clip(action, +-{meta.get('action_clip')}), held by "
               "position actuators with kp / kd from metadata.json. robot.mjb is the training "
               "scene (robot, floor, solver options).")
    history = ("Each term: clip, then scale, then history (oldest first; at a clip start every "
               "slot holds the first step). A concatenated group joins its terms' histories in "
               "the order below; a dict group feeds each term as its own input.")
    reference = (f"Velocity command `{command['command_name']}`: (vx m/s, vy m/s, yaw rate "
                 f"rad/s) in the base frame, trained on {command['ranges']}. The robot starts at "
                 "rest in default_root_state / default_joint_pos." if velocity else
                 "A goal (x, y) in metres from the start position, world frame; the policy "
                 "reads it in its base yaw frame (goal_position_b). The robot starts at rest in "
                 "default_root_state / default_joint_pos." if goal else
                 f"Anchor body `{command['anchor_body']}`; tracked bodies "
                 f"{command['body_names']}; future frames at offsets "
                 f"{command['future_frame_offsets']} (control steps), SMPL frames at "
                 f"{command['smpl_future_frame_offsets']}; VR points on "
                 f"{command['vr_body_names']} with offsets {command['vr_body_offsets']}.")
    lines = [f"# Deploy bundle: {meta['robot']} policy", "",
             "Run (needs onnxruntime, mujoco, numpy; imageio for --video):", "", run, "",
             actions, "", "## Models and inputs (batch first, float32)", ""]
    for model in meta["models"].values():
        inputs = ", ".join(f"`{n}` {shape[1:]}" for n, shape in model["inputs"].items())
        output = model["outputs"]["actions"][1:]
        lines.append(f"- `{model['file']}`: {inputs} -> `actions` {output}")
        state = model.get("recurrent_state")
        if state:
            lines.append(f"  Recurrent ({state['cell']}; {state['layout']}): `{state['input']}` "
                         f"and `{state['output']}` {state['shape']} (-1: the batch); "
                         f"{state['reset']}.")
    lines += ["", "## Observation terms", "", history, ""]
    for group, spec in meta["observation_contract"].items():
        kind = "concatenated" if spec["concatenate"] else "one input per term"
        lines += [f"### {group} ({kind})", "",
                  "| term | function | per-step shape | history | clip | scale |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {t['name']} | {t['func']} | {t['shape']} | {t['history_length']} "
                  f"| {t['clip']} | {t['scale']} |" for t in spec["terms"]]
        lines.append("")
    title = ("## Command (velocity)" if velocity else "## Command (goal)" if goal else
             "## Reference (motion clip)")
    lines += [title, "",
              reference, "",
              "## Joints (order of actions and joint terms)", "",
              "| joint | default | kp | kd | action scale |", "|---|---|---|---|---|"]
    for i, name in enumerate(meta["joint_names"]):
        lines.append(f"| {name} | {meta['default_joint_pos'][i]:.4f} | {meta['kp'][i]:.3f} | "
                     f"{meta['kd'][i]:.3f} | {meta['action_scale'][i]:.4f} |")
    return "\n".join(lines) + "\n"
