"""Entry point in a checkout: python launch.py [overrides], or python launch.py -m [sweep overrides] (see README).
The program is bench/cli.py, also installed as the `warmup-bench` command."""

from bench.cli import cli

if __name__ == "__main__":
    cli()
