"""MDP terms of the gear_sonic tasks, one module per manager (mjlab / Isaac Lab signatures)."""
