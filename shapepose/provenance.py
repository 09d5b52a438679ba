"""Per-sequence identity of registration data, so that Snakemake reruns only changed sequences.

A registrations file holds every sequence of one sex, so its modification time says nothing about
which sequence changed. The workflow therefore reads the file through `ancient()` and passes each
extraction job a `source` parameter: a digest of that one sequence. Snakemake reruns a job whose
parameters changed, so replacing one sequence's data reruns that sequence's jobs and no others.

- Downloaded data: the digest is the sha256 of the sequence's values, cached by file size and
  modification time so a multi-GB file is hashed once per change, not on every `snakemake` call.
- Demo data: the generator stamps each dataset with the digest of the config that made it
  (`spec_digest`) and of its values (`content_digest`). While the file is what the config says it
  should be, the digest is the spec digest; a config change gives a new spec digest at once (the
  file is regenerated in the same run), and a hand edit shows up as a content mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py

from shapepose.dfaust import dataset_digest, open_registrations
from shapepose.io import atomic_file


def spec_digest(spec: dict) -> str:
    """Digest of a JSON-able description of how a demo sequence is generated."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


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


def source_digest(registrations: str | os.PathLike, key: str, cache: DigestCache,
                  expected_spec: str | None = None) -> str:
    """The `source` parameter of the extraction job of sequence `key` (see the module docstring).

    `expected_spec` is given for demo data (the spec digest the config implies) and None for
    downloaded data.
    """
    if expected_spec is not None:
        if not Path(registrations).exists():
            return f"spec:{expected_spec}"
        with open_registrations(registrations) as fh:
            attrs = fh[key].attrs if key in fh else {}
            stamped_spec = attrs.get("spec_digest")
            stamped_content = attrs.get("content_digest")
        if stamped_spec != expected_spec:
            return f"spec:{expected_spec}"  # out of date: the generator reruns in this same run
        if stamped_content == cache.content_digest(registrations, key):
            return f"spec:{expected_spec}"
    return f"content:{cache.content_digest(registrations, key)}"


def stamp_demo_digests(registrations: str | os.PathLike, specs: dict[str, str]) -> None:
    """Record on each dataset the spec digest that made it and the digest of its values."""
    for key, spec in specs.items():
        content = dataset_digest(registrations, key)
        with h5py.File(registrations, "r+") as fh:
            fh[key].attrs["spec_digest"] = spec
            fh[key].attrs["content_digest"] = content
