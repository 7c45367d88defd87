"""Mean and spread over seeds."""

import math


def mean_std(values):
    """Returns (n, mean, std) of the values that are not None.

    std is the sample standard deviation (divides by n - 1); it is None when
    n < 2 and mean is None when n == 0.
    """
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return 0, None, None
    mean = math.fsum(xs) / n
    if n < 2:
        return n, mean, None
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return n, mean, math.sqrt(var)


def paired_differences(a, b):
    """[a_i - b_i] for the pairs where both values exist (same run, same seed)."""
    return [x - y for x, y in zip(a, b) if x is not None and y is not None]
