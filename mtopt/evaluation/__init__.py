"""mtopt.evaluation"""
