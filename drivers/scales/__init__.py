"""Shipping-scale protocols, one module per protocol exposing ``PROTOCOL``, and the reader with the
settle rule.
"""
