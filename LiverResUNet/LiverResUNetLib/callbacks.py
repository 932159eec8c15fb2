"""The callbacks that long operations (reading a series, inference, training) take, named once for type hints."""

from collections.abc import Callable

#: ``progress(fraction, message)``: fractions increase from 0 to 1; the message says what is being done.
Progress = Callable[[float, str], None]
#: ``cancel() -> bool``, asked between steps: True makes the operation raise ``errors.Cancelled``.
CancelCheck = Callable[[], bool]
