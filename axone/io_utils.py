"""Interactive logging, as ``keras.utils.enable_interactive_logging``: the one switch that
decides where progress bars, ``model.summary`` and the callbacks' messages go.

Enabled (the default), :func:`print_msg` writes to standard output (or the stream given);
disabled, every message goes to the ``logging`` logger ``"axone"`` at INFO level instead
(Keras sends it to ``absl.logging``), so it is silent unless logging is configured to show it.
"""
import logging
import sys
import threading

__all__ = ["enable_interactive_logging", "disable_interactive_logging",
           "is_interactive_logging_enabled", "print_msg"]

_STATE = {"interactive_logging": True}
_LOCK = threading.Lock()
logger = logging.getLogger("axone")


def enable_interactive_logging():
    """Turn on interactive logging: messages and progress bars go to standard output."""
    with _LOCK:
        _STATE["interactive_logging"] = True


def disable_interactive_logging():
    """Turn off interactive logging: messages and progress bars go to the ``"axone"``
    ``logging`` logger (INFO) instead of standard output."""
    with _LOCK:
        _STATE["interactive_logging"] = False


def is_interactive_logging_enabled():
    """True when messages are written to standard output (the default)."""
    return _STATE["interactive_logging"]


def print_msg(message, line_break=True, stream=None):
    """Write ``message`` (followed by a newline when ``line_break``) to ``stream`` (default
    standard output) when interactive logging is on; log it at INFO level otherwise."""
    if _STATE["interactive_logging"]:
        out = stream if stream is not None else sys.stdout
        out.write(message + "\n" if line_break else message)
        out.flush()
    else:
        text = message.replace("\r", "").replace("\b", "").strip("\n")
        if text.strip():
            logger.info(text)
