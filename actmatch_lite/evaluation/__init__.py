"""The evaluation: metrics M1-M14 (docs/EVALUATION.md), baselines at equal area, suites, benchmarks and ablations.

It imports the method, the shipped data and models, and the base modules; the method never imports it.
"""
