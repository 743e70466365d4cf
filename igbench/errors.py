"""The one exception type a user sees as a single line (the CLI prints it and exits with code 2)."""
import difflib


class UserError(Exception):
    """A problem with what the user asked for: bad input, a wrong file, an impossible configuration."""


def did_you_mean(name: str, options) -> str:
    """' (did you mean 'x'?)' when `name` is close to one of `options`, else ''."""
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def choices(options) -> str:
    return ", ".join(sorted(str(o) for o in options))
