"""``python -m dse.validation.attacc``: the AttAcc layer model against AttAcc's Ramulator-2.

The model is :mod:`dse.models.pim_attacc` (``pim_kernel`` runs it with
``policy.mapping=attacc``); this module is its validation face: the same names, and the
command that compares it with AttAcc's shipped cache.
"""

from __future__ import annotations

import sys

from dse.models import pim_attacc as _model
from dse.models.pim_attacc import *  # noqa: F403
from dse.models.pim_attacc import (  # noqa: F401  (used by the tests and the report)
    DEFAULT_MAX_LEN,
    LAYER_FAMILIES,
    MAX_L,
    N_CHANNEL,
    SEG_MAX,
    _eval_fn,
    evaluate_corpus_rows,
)

__all__ = list(_model.__all__)

if __name__ == "__main__":
    sys.exit(0 if _model.main() is not None else 1)
