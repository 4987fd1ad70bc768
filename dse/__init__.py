"""dse: a JAX-vectorized design-space explorer for processing-in-memory LLM inference.

The Python API mirrors the command line: :func:`explore` takes the same Hydra overrides as
``python -m dse`` and returns the results table.

Importing the package changes nothing process-wide: JAX's configuration and ``XLA_FLAGS``
are left as they were. The computations run in 64-bit types inside their own scope
(:mod:`dse.precision`). To spread design points over every CPU core as the command lines do,
call :func:`use_host_cores` before the first JAX computation of the process.
"""

from dse.cli import explore, run
from dse.errors import ConfigError
from dse.point import DesignPoint, decode_status, from_config
from dse.precision import x64
from dse.process import use_host_cores
from dse.space import Space, build_space

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DesignPoint",
    "Space",
    "build_space",
    "decode_status",
    "explore",
    "from_config",
    "run",
    "use_host_cores",
    "x64",
    "__version__",
]
