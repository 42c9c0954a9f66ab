"""Directory listings in the dialects FTP servers speak.

``MLSD`` (RFC 3659) where the server offers ``MLST``: machine-readable facts. Otherwise
``LIST -a`` in the Unix ``ls -l`` format most servers use (vsftpd, ProFTPD, Pure-FTPd) or
the DOS format of IIS; and when a listing line fits neither, ``NLST`` names with
``SIZE`` and ``CWD`` per name. ``NLST dir`` answers ``dir/name`` on some servers (vsftpd)
and ``name`` on others; names are taken after the last ``/`` either way, and ``NLST``
here is always sent for the current directory.
"""

from __future__ import annotations

import ftplib
import re
from dataclasses import dataclass

_UNIX = re.compile(
    r"^(?P<kind>[-dlbcps])[-rwxsStTl]{9}[.+@]?\s+\d+\s+\S+\s+(?:\S+\s+)?(?P<size>\d+)\s+"
    r"(?:\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})|\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2})\s"
    r"(?P<name>.+)$"
)
_DOS = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}\s*[AaPp]?[Mm]?\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$"
)


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int | None
    is_link: bool = False


def parse_list_line(line: str) -> Entry | None:
    """One line of a ``LIST`` answer; None for lines that are no entry or unknown."""
    match = _UNIX.match(line)
    if match:
        kind, name = match["kind"], match["name"]
        if kind == "l":
            return Entry(name.split(" -> ", 1)[0], False, None, is_link=True)
        if kind not in "-d":
            return None
        return Entry(name, kind == "d", None if kind == "d" else int(match["size"]))
    match = _DOS.match(line)
    if match:
        is_dir = match["size"] == "<DIR>"
        return Entry(match["name"], is_dir, None if is_dir else int(match["size"]))
    return None


def lines(ftp: ftplib.FTP, command: str) -> list[str]:
    """The text lines a listing command sends over a data connection, without switching
    the connection out of binary mode (``retrlines`` would send ``TYPE A``)."""
    out: list[str] = []
    with ftp.transfercmd(command) as conn, conn.makefile("rb") as data:
        for raw in data:
            out.append(raw.decode(ftp.encoding, "surrogateescape").rstrip("\r\n"))
        if hasattr(conn, "unwrap"):
            conn.unwrap()
    ftp.voidresp()
    return out


def mlsd_facts(line: str) -> Entry | None:
    """One ``MLSD``/``MLST`` line (``type=file;size=5; name``); None for ``cdir``,
    ``pdir`` and kinds that are no file, directory or link."""
    facts_text, _, name = line.partition(" ")
    facts = {}
    for fact in facts_text.rstrip(";").split(";"):
        key, _, value = fact.partition("=")
        facts[key.lower()] = value
    kind = facts.get("type", "").lower()
    name = name.rsplit("/", 1)[-1]  # MLST answers with the path it was asked
    if kind == "dir":
        return Entry(name, True, None)
    if kind == "file":
        return Entry(name, False, int(facts["size"]) if "size" in facts else None)
    if kind.startswith(("os.unix=symlink", "os.unix=slink")):
        return Entry(name, False, None, is_link=True)
    return None


def mlsd(ftp: ftplib.FTP, path: str) -> list[Entry]:
    return [e for e in map(mlsd_facts, lines(ftp, f"MLSD {path}")) if e is not None]


def list_current(ftp: ftplib.FTP) -> list[Entry]:
    """The entries of the current directory, without ``.`` and ``..``."""
    raw = [line for line in lines(ftp, "LIST -a") if line and not line.startswith("total ")]
    parsed = [parse_list_line(line) for line in raw]
    if any(entry is None and not _is_device(line) for entry, line in zip(parsed, raw,
                                                                          strict=True)):
        return _from_names(ftp)
    return [e for e in parsed if e is not None and e.name not in (".", "..")]


def _is_device(line: str) -> bool:
    return bool(line) and line[0] in "bcps" and _UNIX.match(line) is not None


def _from_names(ftp: ftplib.FTP) -> list[Entry]:
    """NLST names, each asked for its size (a file) or entered (a directory)."""
    out = []
    for name in lines(ftp, "NLST -a"):
        name = name.rsplit("/", 1)[-1]
        if not name or name in (".", ".."):
            continue
        out.append(probe(ftp, name))
    return [e for e in out if e is not None]


def probe(ftp: ftplib.FTP, name: str) -> Entry | None:
    """What ``name`` (relative to the current directory, or absolute) is, asking
    ``SIZE`` and then ``CWD``; None if neither knows it. Leaves the current directory
    where it was."""
    try:
        return Entry(name, False, int(ftp.sendcmd(f"SIZE {name}").split()[1]))
    except ftplib.error_perm:
        pass
    here = ftp.pwd()
    try:
        ftp.cwd(name)
    except ftplib.error_perm:
        return None
    ftp.cwd(here)
    return Entry(name, True, None)
