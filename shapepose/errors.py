"""The one exception type that stops a stage on bad input, with a message naming where."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names the file, and where known the key and frame, and the problem.

    Scripts let it propagate; Snakemake shows the single message and removes the job's outputs.
    """

    def __init__(self, path, problem: str, *, key: str | None = None, frame: int | None = None):
        self.path = str(path)
        self.key = key
        self.frame = frame
        self.problem = problem
        where = [f"file {self.path}"]
        if key is not None:
            where.append(f"key {key!r}")
        if frame is not None:
            where.append(f"frame {frame}")
        super().__init__(f"{', '.join(where)}: {problem}")
