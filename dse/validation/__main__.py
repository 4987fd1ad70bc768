"""``python -m dse.validation``: run every validation and write docs/validation.md."""

import sys

from dse.validation.report import main

if __name__ == "__main__":
    sys.exit(main())
