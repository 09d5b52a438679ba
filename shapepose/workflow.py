"""What every Snakemake entry script shares: its log file, its progress and its one-line errors."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from typing import Iterator

from shapepose.errors import InputError


@contextlib.contextmanager
def script_logging(snakemake) -> Iterator[logging.Logger]:
    """Send stderr (logging and tqdm) to the rule's log; end bad input with one clear line.

    An `InputError` is written as a single `ERROR:` line naming file, key and frame, and the
    script exits with status 1 so Snakemake removes the job's outputs. Any other exception keeps
    its traceback, since that one is a bug rather than bad input.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = open(log_path, "w", buffering=1) if log_path else sys.stderr
    old_stderr = sys.stderr
    sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=stream, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger(f"shapepose.rules.{snakemake.rule}")
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        yield logger
    except InputError as exc:
        print(f"ERROR: {exc}", file=stream, flush=True)
        if stream is not old_stderr:
            print(f"ERROR in rule {snakemake.rule}: {exc}", file=old_stderr, flush=True)
        sys.exit(1)
    except SystemExit:
        raise  # a deliberate exit (e.g. a trainer checkpointing on SIGTERM) has said why already
    except BaseException:
        traceback.print_exc(file=stream)
        raise
    finally:
        sys.stderr = old_stderr
        if stream is not old_stderr:
            stream.flush()
