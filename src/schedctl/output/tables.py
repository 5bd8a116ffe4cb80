"""Tables and aligned fields for people, fitted to the terminal: which columns a table
shows at a given width, under which headers, and how its cells fold."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

# A table cell: its text, or its text and a rich style (a colour only a terminal shows).
Cell = str | tuple[str, str]


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


# The fewest leading characters of an id a table shows on a terminal (REF accepts as few).
SHORT_ID = 8


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id cut to the shortest prefix, SHORT_ID characters or more, that still tells the
    given ids apart (for a table on a terminal; plain and JSON output keep whole ids)."""
    unique = sorted(set(ids))
    length = SHORT_ID
    while length < max((len(i) for i in unique), default=0) and len(
        {i[:length] for i in unique}
    ) < len(unique):
        length += 1
    return {i: i[:length] for i in unique}


def fold_at_dots(name: str, width: int) -> str:
    """A domain broken into lines of at most `width` characters after its dots (a label
    longer than the width keeps a line of its own)."""
    if len(name) <= width:
        return name
    lines: list[str] = []
    line = ""
    labels = name.split(".")
    for index, label in enumerate(labels):
        piece = label + ("." if index < len(labels) - 1 else "")
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "\n".join(lines)


# When a table is wider than the terminal: headers shortened first, then whole columns
# left out, least useful first (the README lists this order). Ids, domains, times and
# statuses are never left out.
SHORT_HEADERS = {"Organisation": "Org", "Schedulers": "Scheds", "Completed": "Ended"}
DROP_ORDER = (
    "Source",
    "Overlap",
    "Progress",
    "Failed",
    "Done",
    "Last run",
    "Trigger",
    "Every",
    "Completed",
    "Reason",
    "Actor",
    "Action",
)
# A word longer than this share of the width may fold (a pasted URL in a pause reason).
_LONGEST_WORD_SHARE = 3


def _lines(cell: Cell) -> list[str]:
    return _text(cell).split("\n")


def _widest_line(texts: Iterable[str]) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for text in texts for line in text.split("\n")), default=0)


def _longest_word(texts: Iterable[str], *, dotted: bool = False) -> int:
    """The widest piece a column may not break: a word, or in a domain a label with its dot."""
    from rich.cells import cell_len

    longest = 0
    for text in texts:
        for word in text.split():
            pieces = [p + "." for p in word.split(".")] if dotted else [word]
            longest = max(longest, *(cell_len(piece) for piece in pieces))
    return longest


def fit_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    unbroken: Sequence[int] = (),
    dotted: int | None = None,
) -> tuple[list[int], list[str], list[int]]:
    """Which columns a table `width` characters wide shows, under which headers, and how
    wide each is: every column at least as wide as its widest word (its whole value for
    `unbroken` ones), headers shortened and columns dropped in DROP_ORDER until that fits,
    then the room left shared out towards each column's natural width."""
    cap = max(12, width // _LONGEST_WORD_SHARE)

    def measure(index: int, header: str) -> tuple[int, int]:
        texts = [_text(row[index]) for row in rows]
        natural = max(_widest_line(texts), _widest_line([header]))
        if index in unbroken:
            return natural, natural
        words = min(cap, _longest_word(texts, dotted=index == dotted))
        return max(words, _longest_word([header])), natural

    def overhead(count: int) -> int:
        return 3 * count + 1  # a space either side of each cell, and the borders

    shown = list(range(len(headers)))
    names = list(headers)
    sizes = {i: measure(i, names[i]) for i in shown}

    def too_wide() -> bool:
        return sum(sizes[i][0] for i in shown) + overhead(len(shown)) > width

    if too_wide():
        for i in shown:
            if names[i] in SHORT_HEADERS:
                names[i] = SHORT_HEADERS[names[i]]
                sizes[i] = measure(i, names[i])
    for name in DROP_ORDER:
        if not too_wide():
            break
        shown = [i for i in shown if headers[i] != name]
    widths = {i: sizes[i][0] for i in shown}
    room = width - overhead(len(shown)) - sum(widths.values())
    while room > 0:
        wanting = [i for i in shown if widths[i] < sizes[i][1]]
        if not wanting:
            break
        share = max(1, room // len(wanting))
        for i in wanting:
            extra = min(share, sizes[i][1] - widths[i], room)
            widths[i] += extra
            room -= extra
            if room <= 0:
                break
    return shown, [names[i] for i in shown], [widths[i] for i in shown]


def table(
    title: str | None,
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    terminal: bool,
    unbroken: Sequence[int] = (),
    dotted: int | None = None,
) -> None:
    """A rich table on a terminal, fitted to its width (fit_columns: no word split, no line
    wider than the terminal); tab-separated lines otherwise. On a terminal the columns in
    `unbroken` (short ids) never fold, and the cells of the `dotted` column (domains) fold
    after a dot rather than inside a label."""
    if not terminal:
        print("\t".join(h.lower().replace(" ", "_") for h in headers))
        for row in rows:
            # A cell's second line (a relative time) is for people at a terminal.
            print("\t".join(_text(cell).split("\n")[0] for cell in row))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # rich reads the terminal's width itself (COLUMNS overrides it).
    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    cells = [list(row) for row in rows]
    shown, names, widths = fit_columns(
        headers, cells, console.width, unbroken=unbroken, dotted=dotted
    )
    grid = Table(title=title, header_style="bold", expand=False)
    for index, name, width in zip(shown, names, widths, strict=True):
        grid.add_column(name, width=width, no_wrap=index in unbroken, overflow="fold")
    for row in cells:
        shown_cells: list[Cell] = []
        for index, width in zip(shown, widths, strict=True):
            cell = row[index]
            if index == dotted:
                text = "\n".join(fold_at_dots(line, width) for line in _lines(cell))
                cell = text if isinstance(cell, str) else (text, cell[1])
            shown_cells.append(cell)
        # Text, not markup: a pause reason like "[/blog]" is shown as written.
        grid.add_row(*(Text(c) if isinstance(c, str) else Text(*c) for c in shown_cells))
    console.print(grid)


def fields(pairs: Sequence[tuple[str, str]], *, columns: int | None = None) -> None:
    """A record as aligned "key  value" lines; a value of several lines continues under the
    first. On a terminal (or given `columns`), a line longer than its width wraps between
    words under the value, so that no line is wider than the terminal."""
    width = max((len(key) for key, _ in pairs), default=0)
    if columns is None and sys.stdout.isatty():
        import shutil

        columns = shutil.get_terminal_size().columns
    for key, value in pairs:
        lines = value.split("\n")
        if columns is not None:
            lines = [part for line in lines for part in wrap_words(line, columns - width - 2)]
        first, *rest = lines
        print(f"{key.ljust(width)}  {first}")
        for line in rest:
            print(f"{' ' * width}  {line}")


def wrap_words(line: str, width: int) -> list[str]:
    """A line in pieces of at most `width` characters, broken between words (only a word
    longer than the whole width is cut)."""
    import textwrap

    if len(line) <= width or width < 10:
        return [line]
    return textwrap.wrap(line, width, break_on_hyphens=False, replace_whitespace=False) or [line]
