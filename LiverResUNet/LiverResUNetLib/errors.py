"""The one error type for bad input: its message names the file and the reason."""


class InputError(Exception):
    """Bad input from the user (not CT, missing slices, corrupt file, wrong model...).

    The command line prints it as one line without a traceback; the Slicer module shows it in a dialog.
    Always build it with :func:`input_error` or give a message that starts with the offending path.
    """


def input_error(path: object, reason: str) -> InputError:
    """Return an InputError whose message names ``path`` and ``reason``."""
    return InputError(f"{path}: {reason}")


class Cancelled(Exception):
    """The user pressed Cancel (or a cancel callback said so); nothing was written or added."""
