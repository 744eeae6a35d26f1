"""The `optimize` command's exit codes, and which of several runs' codes a batch reports.

    0  success: the output was written and verified (or verification was turned off with --no-verify)
    1  verification failed: the optimized (or candidate) model computes different outputs; nothing is written
    2  a usage or input error: one line on stderr naming the file or option and the problem; this includes a model
       that crashes TensorFlow (a signal such as an `Abort` op's SIGABRT), runs past --time-limit or exhausts
       --memory-limit in the child process that runs it (`optimizer.sandbox`): the stage, what it did, the cause
    3  an internal error in a pass (one line naming the pass; --traceback shows it)
    4  the output was written but not verified: nothing could be compared (one line on stderr says why)

A batch exits with its worst run's code, worst first: 3, 2 (errors), 1 (failed), 4 (not verified), 0.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_NOT_VERIFIED = 0, 1, 2, 3, 4
EXIT_CODES_HELP = (
    "Exit codes: 0 written and verified (or --no-verify); 1 verification failed (nothing written); 2 a usage or "
    "input error, or a model that crashes TensorFlow or exceeds --time-limit or --memory-limit; 3 an internal error "
    "in a pass; 4 written but not verified (nothing could be compared: give "
    "--input-data or --input-shape). A batch exits with its worst: 3, 2, 1, 4, 0."
)
"""The exit codes as `optimize --help` lists them."""
SEVERITY = (EXIT_OK, EXIT_NOT_VERIFIED, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_INTERNAL)
"""Exit codes from the mildest to the worst."""


def worst(codes: Iterable[int]) -> int:
    """The worst of `codes` by `SEVERITY` (an unknown code counts as the worst); EXIT_OK for none."""
    return max(codes, key=lambda code: SEVERITY.index(code) if code in SEVERITY else len(SEVERITY), default=EXIT_OK)
