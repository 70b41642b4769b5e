"""mtopt.system"""
