"""Headless trainer: datasets, preprocessing cache, fit, evaluate, tables (no Qt).

It never re-implements preprocessing: every tensor it trains on comes from the
same ``engine`` functions a detector calls at analysis time.
"""
