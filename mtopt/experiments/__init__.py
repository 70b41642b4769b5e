"""mtopt.experiments"""
