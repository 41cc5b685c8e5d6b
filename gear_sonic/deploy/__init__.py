"""Torch-free sim-to-sim deployment: an exported policy run in plain MuJoCo.

Run time needs onnxruntime, mujoco and numpy only (imageio for --video); `bundle.py` is the
export side and is never imported by the loop. Entry point: run_policy.py.
"""
