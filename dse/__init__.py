"""dse: a JAX-vectorized design-space explorer for processing-in-memory LLM inference.

The Python API mirrors the command line: :func:`explore` takes the same Hydra overrides as
``python -m dse`` and returns the results table.
"""

from dse.host import use_host_cores

use_host_cores()  # before JAX starts its CPU backend

from dse import explore as _explore  # noqa: E402, F401  (enables x64 before anything else)
from dse.cli import explore, run  # noqa: E402
from dse.errors import ConfigError  # noqa: E402
from dse.point import DesignPoint, decode_status, from_config  # noqa: E402
from dse.space import Space, build_space  # noqa: E402

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
    "__version__",
]
