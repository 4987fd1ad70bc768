"""``python -m dse.search``: see :func:`dse.search.cli.main`."""

from dse.search.cli import main

if __name__ == "__main__":
    main()
