"""Types of the commands' numeric options (argparse): a clear error instead of a traceback later."""
import argparse


def positive(kind):
    """A number of ``kind`` above zero: ``--jobs 0`` or ``--cell-timeout -5`` is refused by name."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"нужно число, а не {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"нужно число больше 0, а не {text}")
        return value
    return parse
