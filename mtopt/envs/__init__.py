"""mtopt.envs"""
