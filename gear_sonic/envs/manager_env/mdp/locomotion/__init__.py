"""Velocity-tracking locomotion terms that mjlab does not ship.

Everything else the locomotion YAMLs name comes from mjlab itself: the velocity command
(`mjlab.tasks.velocity.mdp.UniformVelocityCommandCfg`, built by `commands.velocity_command_cfg`),
its curriculum (`commands_vel`), feet air time, illegal contact, the generic penalties
(`joint_torques_l2`, `joint_acc_l2`, `action_rate_l2`, `flat_orientation_l2`, `joint_pos_limits`)
and domain randomisation (`dr.*`, `push_by_setting_velocity`). YAMLs name the functions here by
their dotted path (`gear_sonic.envs.manager_env.mdp.locomotion.rewards.track_lin_vel_xy_exp`).
"""
