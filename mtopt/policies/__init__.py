"""mtopt.policies"""
