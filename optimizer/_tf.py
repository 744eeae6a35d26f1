"""The one place TensorFlow is imported: quietly (its import-time C++ log lines are swallowed, and its C++ logging
is set to print nothing below FATAL) and with a one-line error that says how to install it when it is missing."""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType

from optimizer.errors import OptimizerError

INSTALL_HINT = "TensorFlow is not installed: run `pip install tensorflow-cpu` (or `tensorflow`, >= 2.16)"


def tensorflow() -> ModuleType:
    """Return the `tensorflow` module, importing it on first use with its start-up chatter silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # 3: not even its ERROR lines, which a graph that fails to import prints by the dozen beside our one line
    # (read once, at TensorFlow's first log line; TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them all).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
        except ImportError as error:
            raise OptimizerError(INSTALL_HINT) from error
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
