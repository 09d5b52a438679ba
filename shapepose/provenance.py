"""Per-sequence identity of downloaded registrations, so that Snakemake reruns only what changed.

A DFAUST registrations file holds every sequence of one sex, so its modification time says nothing
about which sequence changed. For downloaded files the workflow therefore reads the file through
`ancient()` and passes each extraction job a `source` parameter: the sha256 of that one sequence's
values. Snakemake reruns a job whose parameters changed, so replacing one sequence's data reruns
that sequence's jobs and no others. The digests are cached by file size and modification time, so a
multi-GB file is hashed once per change, not on every `snakemake` call.

Only files that no rule writes may be treated this way: a parameter is computed when the DAG is
built, before any job runs, so a digest of a file that a job is about to rewrite would be stale.
The demo bodies are written one sequence per file instead, and tracked by modification time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shapepose.dfaust import dataset_digest
from shapepose.io import atomic_file


class DigestCache:
    """A small JSON file mapping (path, size, mtime, key) to content digests."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def content_digest(self, registrations: str | os.PathLike, key: str) -> str:
        st = os.stat(registrations)
        entry = f"{os.path.abspath(registrations)}|{st.st_size}|{st.st_mtime_ns}|{key}"
        if entry not in self.entries:
            self.entries[entry] = dataset_digest(registrations, key)
            self.dirty = True
        return self.entries[entry]

    def save(self) -> None:
        if not self.dirty:
            return
        with atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps(self.entries, indent=0, sort_keys=True))
        self.dirty = False


def source_digest(registrations: str | os.PathLike, key: str, cache: DigestCache) -> str:
    """The `source` parameter of the extraction job of sequence `key` in a downloaded file."""
    return f"content:{cache.content_digest(registrations, key)}"
