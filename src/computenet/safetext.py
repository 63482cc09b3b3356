"""Text that reaches an engine: control characters are refused before anything runs.

A NUL byte cannot be passed to ``execve`` (Python raises ``ValueError: embedded null byte``)
and other control characters in names and paths make logs and shells lie about what they
show, so the API, the CLI and the executors refuse them with one rule, here.
"""

from __future__ import annotations

import unicodedata

COMMAND_ALLOWED = "\n\t"
"""Control characters a command may hold: a script has lines and indentation."""


def control_character(text: str, allowed: str = "") -> str | None:
    """A description of the first control character (Unicode category ``Cc``, which covers
    NUL, the C0 and C1 ranges and DEL) or lone surrogate in ``text`` outside ``allowed``,
    e.g. ``"a NUL byte at position 4"``; ``None`` when the text is clean."""
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cs":
            return f"an unpaired surrogate U+{ord(char):04X} at position {position}"
        if category == "Cc" and char not in allowed:
            what = "a NUL byte" if char == "\0" else f"the control character U+{ord(char):04X}"
            return f"{what} at position {position}"
    return None


def refusal(text: str, allowed: str = "") -> str | None:
    """The reason to refuse ``text`` (with the fix), or ``None`` when it is clean."""
    found = control_character(text, allowed)
    if found is None:
        return None
    keep = " (newlines and tabs are allowed)" if allowed == COMMAND_ALLOWED else ""
    return f"contains {found}; remove control characters{keep}"
