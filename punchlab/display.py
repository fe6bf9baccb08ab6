"""Text from the network, made safe to show in a terminal or a widget.

A chat line, an identifier or a server's error message is a claim from
someone else. Printed raw, it can drive the terminal (ESC starts escape
sequences that set the window title, clear the screen or plant hyperlinks;
CR and BS overwrite what is already on the line; BEL rings) or mislead the
reader (a newline forges a line of its own; a bidi override shows text in
another order than it was sent; zero-width characters hide in an
identifier). :func:`printable` shows every such character as a visible
escape instead.

The convention is Python's string-literal escapes:

* ``\\t``, ``\\n``, ``\\r`` for tab, line feed and carriage return;
* ``\\xNN`` for the other C0 controls (``\\x1b`` is ESC, ``\\x07`` BEL), DEL
  (``\\x7f``), the C1 controls U+0080-U+009F and the soft hyphen;
* ``\\uNNNN`` / ``\\UNNNNNNNN`` for the rest: bidi embeddings, overrides and
  isolates (``\\u202e``), marks such as ``\\u200f``, zero-width and other
  invisible format characters (``\\u200b``, ``\\ufeff``, the tag characters),
  line and paragraph separators (``\\u2028``, ``\\u2029``) and lone
  surrogates.

Tab is escaped too: shown text is always one line, with no column tricks.
Zero-width (non-)joiners (U+200C, U+200D) are kept: Persian, Indic scripts and
emoji sequences need them, and they neither move nor hide other text. Every
other printable character, any script, emoji, spaces, is shown as it is.

A backslash is shown as it is, too. A peer can therefore type the four
characters ``\\x1b`` and have them look like an escaped ESC, which is
harmless (they do nothing); doubling every backslash instead would garble
ordinary lines (``¯\\_(ツ)_/¯``, ``C:\\Users``) and messages that already quote
with ``repr``.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = [
    "ELLIPSIS",
    "EscapingFormatter",
    "format_duration",
    "printable",
    "text_table",
]

#: Ends a text cut to its ``limit``.
ELLIPSIS = "…"

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

#: Control (Cc), format (Cf) and surrogate (Cs) characters and the line and
#: paragraph separators (Zl, Zp): what drives a terminal or reorders, hides or
#: breaks a line.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _escape(char: str) -> str:
    """One character as shown: itself, or its Python escape."""
    short = _SHORT.get(char)
    if short is not None:
        return short
    if char in _JOINERS or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control or invisible format character shown escaped.

    With ``limit``, the result is at most that many characters: a longer one
    is cut (never inside an escape) and ends with :data:`ELLIPSIS`. The result
    never contains a control character, so it is one line, whatever it came
    from.
    """
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    # Most text is printable (str.isprintable: no Cc, Cf, Cs, Zl, Zp and more).
    pieces: Iterable[str] = text if text.isprintable() else map(_escape, text)
    if limit is None:
        return "".join(pieces)
    shown: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) > limit:
            while shown and length + len(ELLIPSIS) > limit:
                length -= len(shown.pop())
            return "".join(shown) + ELLIPSIS
        shown.append(piece)
        length += len(piece)
    return "".join(shown)


def format_duration(seconds: float) -> str:
    """A measured time in milliseconds, with the digits it needs to be neither 0 nor noise.

    A punch over loopback takes a fraction of a millisecond: shown as ``0 ms``
    it reads as "nothing was measured". Below 10 ms the figure keeps two
    significant digits; above, whole milliseconds.
    """
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    milliseconds = seconds * 1000
    if milliseconds >= 9.95 or milliseconds == 0:
        return f"{milliseconds:.0f} ms"
    if milliseconds >= 0.995:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds:.2g} ms"


class EscapingFormatter(logging.Formatter):
    """A log formatter for a terminal: the message (which may quote the network) is escaped.

    Tracebacks that follow a message are left as they are: they are ours.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def text_table(rows: Sequence[Sequence[str]], *, sep: str = "  ", center: bool = False) -> str:
    """Rows of cells as fixed-width text: each column as wide as its widest cell.

    The first column is left-aligned; the others too, or centred (a matrix
    of yes/no under long headers). Trailing spaces are dropped. One
    formatter for every table punchlab prints (traces, NAT mappings, matrices).
    """
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]

    def cell(index: int, text: str) -> str:
        width = widths[index]
        return text.center(width) if center and index > 0 else text.ljust(width)

    return "\n".join(sep.join(cell(i, text) for i, text in enumerate(row)).rstrip() for row in rows)
