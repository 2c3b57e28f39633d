"""What a run's numbers and text mean.

- ``estimators``: pass@k, cons@k, standard errors, bootstrap intervals;
- ``evaluate``: held-out evaluation (greedy accuracy, R1's sampled protocol, paired differences);
- ``traces``: behaviour detectors (verification, backtracking, ...) and their curves over steps.
"""
