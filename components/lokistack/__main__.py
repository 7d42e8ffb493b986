"""``python -m lokistack``: the same as the ``lokistack`` command."""

from lokistack import cli

if __name__ == "__main__":
    raise SystemExit(cli.main())
