"""`python -m jaxdecay`: the same command line as the `jaxdecay` script."""

import sys

from jaxdecay._cli import console

if __name__ == "__main__":
    sys.exit(console())
