"""The `minivae` command (and `python -m minivae`): tune the process, then run the command line.

minivae.runtime.configure() must run before numpy loads OpenBLAS, so the command line (cli.py, which imports numpy)
is imported only after it.
"""
import sys


def main(argv=None):
    from . import runtime
    runtime.configure()
    from .cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
