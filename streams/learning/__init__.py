"""The framework-free learning core: specs, pipelines, events, evaluation, metrics.

Nothing in this package imports Faust or FastAPI, so it can be tested and benchmarked alone.
"""
