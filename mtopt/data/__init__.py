"""mtopt.data"""
