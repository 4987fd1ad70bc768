"""``python -m dse.report RESULTS``: figures and a markdown report of a run."""

import sys

from dse.report.cli import main

sys.exit(main())
