"""Entry point in a checkout: python launch.py [overrides], or python launch.py -m [sweep overrides] (see README).
The program is bench/launch.py, also installed as the `warmup-bench` command."""

from bench.launch import cli

if __name__ == "__main__":
    cli()
