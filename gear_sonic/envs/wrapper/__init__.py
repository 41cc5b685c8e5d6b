from gear_sonic.envs.wrapper.manager_env_wrapper import ManagerEnvWrapper

__all__ = ["ManagerEnvWrapper"]
