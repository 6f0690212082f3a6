"""``python -m forkshare.impl`` is ``forkshare serve`` (the upgrade exec runs this too)."""

import sys

from forkshare.errors import ForkshareError
from forkshare.impl.command import main


def run() -> int:
    """Run the server and map deliberate errors to their exit status, like the dispatcher."""
    try:
        return main(sys.argv[1:])
    except ForkshareError as error:
        print(f"forkshare serve: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(run())
