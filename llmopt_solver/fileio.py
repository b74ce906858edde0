"""Atomic file writes: a reader never sees a half-written file, and a failed write loses nothing."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Writes ``text`` (str as UTF-8, or bytes) to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 less umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(doc: Any) -> str:
    """Returns ``doc`` as JSON with sorted keys and a final newline (byte-identical reruns)."""
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


def same_file(a: str | Path, b: str | Path) -> bool:
    """Returns True if ``a`` and ``b`` name the same file (same inode, or the same resolved path)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


def check_output(out: str | Path, inputs: Sequence[str | Path], field: str = "--out") -> None:
    """Raises InputError if the output file ``out`` is one of the ``inputs`` (it would destroy it)."""
    from llmopt_solver.errors import InputError

    for src in inputs:
        if src and same_file(out, src):
            raise InputError(field=field, problem=f"{str(out)!r} is also an input ({src}); writing it would destroy it",
                             allowed="a file that is not read by this command")


def write_output(path: str | Path, text: str | bytes) -> bool:
    """Writes ``text`` atomically; says on stderr when an existing file is replaced. Returns whether one was."""
    existed = Path(path).exists()
    write_atomic(path, text)
    if existed:
        sys.stderr.write(f"llmopt: replaced existing {path}\n")
    return existed
