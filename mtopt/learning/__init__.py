"""mtopt.learning"""
