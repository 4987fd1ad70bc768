"""``python -m dse``: see :func:`dse.cli.main`."""

from dse.cli import main

if __name__ == "__main__":
    main()
