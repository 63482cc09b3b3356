"""Reading a user's text file: every CSV and TOML loader goes through here.

A file is UTF-8, with or without the byte-order mark that Excel writes ("CSV UTF-8"). Any
other encoding is one ``InputError`` naming the file and the line of the first byte that
is not UTF-8, never a ``UnicodeDecodeError``. A CSV row must have as many fields as the
header: a row with more is refused (a cell holding an unquoted comma would otherwise shift
every value after it silently), a row with fewer names the columns it lacks. Malformed CSV
(a NUL byte, a field past the size limit) is an error with its line, too.

The error class is the caller's (``TraceFileError``, ``SignalFileError``, ...) so that each
loader keeps reporting in its own terms.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from computenet.errors import InputError

UTF8_BOM = b"\xef\xbb\xbf"
SAVE_AS_UTF8 = "save the file as UTF-8 (in Excel: 'CSV UTF-8'; in an editor: encoding UTF-8)"


def read_text(path: Path, *, error: type[InputError] = InputError) -> str:
    """The file's text, UTF-8 with an optional byte-order mark (dropped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(
            f"cannot read the file ({exc.strerror or exc})",
            source=str(path),
            fix="check the path and that the file is readable",
        ) from None
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"byte 0x{data[exc.start]:02x} is not UTF-8 text",
            source=str(path),
            where=f"line {line}",
            fix=SAVE_AS_UTF8,
        ) from None


class CsvFile:
    """A CSV file's header (cells stripped) and its data rows with their line numbers.

    ``rows()`` yields ``(line, cells)``, skipping blank lines; each row has exactly
    ``len(header)`` cells (see the module docstring for what is refused).
    """

    def __init__(self, path: Path, *, error: type[InputError] = InputError) -> None:
        self.path = path
        self.error = error
        self._reader = csv.reader(io.StringIO(read_text(path, error=error), newline=""))
        first = self._next()
        self.header = [h.strip() for h in (first or [])]

    def fail(self, message: str, line: int | None, fix: str | None = None) -> InputError:
        where = f"line {line}" if line is not None else None
        return self.error(message, source=str(self.path), where=where, fix=fix)

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader, None)
        except csv.Error as exc:
            raise self.fail(
                f"not valid CSV ({exc})",
                self._reader.line_num,
                "remove NUL bytes and stray quotes; quote a cell that holds a comma",
            ) from None

    def require(self, columns: Sequence[str], fix: str | None = None) -> None:
        """Refuse a header that lacks any of ``columns`` (or names a column twice)."""
        missing = [c for c in columns if c not in self.header]
        if missing:
            found = ", ".join(repr(h) for h in self.header) or "an empty line"
            raise self.fail(
                f"missing column(s) {', '.join(missing)}; the header is {found}",
                1,
                fix or f"the first line must name the columns {', '.join(columns)}",
            )
        twice = sorted({h for h in self.header if h and self.header.count(h) > 1})
        if twice:
            raise self.fail(
                f"column(s) {', '.join(twice)} named twice in the header", 1, "name each once"
            )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        while (row := self._next()) is not None:
            line = self._reader.line_num
            if not any(c.strip() for c in row):
                continue  # a blank line (e.g. at the end of the file)
            if len(row) > width:
                raise self.fail(
                    f"{len(row)} fields, the header {width}: more fields than the header",
                    line,
                    "remove the extra field(s), or quote a cell that holds a comma",
                )
            if len(row) < width:
                raise self.fail(
                    f"{len(row)} fields, the header {width}: missing "
                    + ", ".join(self.header[len(row) :]),
                    line,
                    "give every row a cell for each column (an empty cell is two commas)",
                )
            yield line, row

    def dicts(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``rows()`` as dicts keyed by the header."""
        for line, row in self.rows():
            yield line, dict(zip(self.header, row, strict=True))
