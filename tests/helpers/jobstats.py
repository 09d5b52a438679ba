"""Read the plan of a Snakemake dry run: how many jobs of each rule it would run."""

import re
from collections import Counter


def job_counts(text: str) -> Counter:
    """{rule: count} from the "Job stats" table of `snakemake -n` output; empty when nothing to do."""
    counts = Counter()
    table = re.search(r"Job stats:\n(.*?)\n\n", text, re.S)
    for line in table.group(1).splitlines()[2:] if table else []:
        parts = line.split()
        if len(parts) == 2 and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts
