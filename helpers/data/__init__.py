"""Data: the seeded e-commerce generator, its cached files, broken inputs and the quality-lab batches.

``python -m helpers.data --rows N --seed S`` caches a dataset; ``--fixtures`` rewrites ``data/fixtures``.
"""
