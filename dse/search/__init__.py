"""Search over design points (DESIGN.md §3): population search (CMA-ES, differential
evolution, random, grid) with every generation evaluated in one vectorized call, gradient
descent over continuous relaxations and sensitivities, Pareto fronts and hypervolume, and the
area and cost model the constraints use."""
