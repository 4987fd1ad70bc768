"""Search over design points (DESIGN.md §3): population search (CMA-ES, differential
evolution, random, grid) with every generation evaluated in one vectorized call, gradient
descent over continuous relaxations and sensitivities, the area and cost model the constraints
use, and ``python -m dse.search.pareto`` (the fronts and hypervolume of a results table, computed
by :mod:`dse.pareto`)."""
