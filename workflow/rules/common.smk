# Helpers shared across the workflow: dataset paths, the list of sequences, and their digests.
import atexit
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the shapepose package lives beside the Snakefile

from snakemake.logging import logger

from shapepose.provenance import DigestCache, source_digest, spec_digest


DATASET = config["meshes"]["dataset"]
DEMO = config["meshes"]["registrations"] == "demo"
SEX_OF = {}  # subject -> "m" / "f"
AVAILABLE = set()  # keys present in downloaded registrations (DFAUST lacks some pairs)


def registrations_path(sex):
    """Where the registrations file of one sex is read from."""
    if DEMO:
        return f"results/demo_bodies/{DATASET}/registrations_{sex}.hdf5"
    return config["meshes"]["registrations"][sex]


def _find_subjects():
    """Map every configured subject to the file (sex) that holds it, failing early if absent."""
    subjects = config["meshes"]["subjects"]
    if DEMO:
        demo = config["demo_bodies"]["subjects"]
        missing = [s for s in subjects if s not in demo]
        if missing:
            raise ValueError(
                f"config: meshes.subjects {missing} are not among demo_bodies.subjects {sorted(demo)}"
            )
        unknown = [q for q in config["meshes"]["sequences"] if q not in config["demo_bodies"]["sequences"]]
        if unknown:
            raise ValueError(
                f"config: meshes.sequences {unknown} are not among demo_bodies.sequences"
            )
        return {s: demo[s] for s in subjects}
    import h5py

    found = {}
    for sex in ("m", "f"):
        path = registrations_path(sex)
        if not Path(path).exists():
            raise ValueError(f"config: meshes.registrations.{sex}: file {path} does not exist")
        with h5py.File(path, "r") as fh:
            for key in fh.keys():
                subject = key.split("_", 1)[0]
                if subject in subjects:
                    found[subject] = sex
                    AVAILABLE.add(key)
    missing = [s for s in subjects if s not in found]
    if missing:
        raise ValueError(f"config: subjects {missing} are in neither registrations file")
    return found


SEX_OF.update(_find_subjects())


def _sequences():
    keys = [f"{s}_{q}" for s in config["meshes"]["subjects"] for q in config["meshes"]["sequences"]]
    if DEMO:
        return keys
    absent = [k for k in keys if k not in AVAILABLE]
    if absent:
        logger.warning(f"shapepose: {len(absent)} subject/sequence pairs are not in the data: {absent}")
    return [k for k in keys if k in AVAILABLE]


SEQUENCES = _sequences()  # every `{subject}_{sequence}` key the config asks for that the data holds


def subject_of(sequence):
    return sequence.split("_", 1)[0]


def demo_spec(sequence):
    """What determines one demo sequence's vertices (see shapepose.provenance)."""
    subject, motion = sequence.split("_", 1)
    from shapepose.bodies.demo import sequence_spec

    return spec_digest(
        sequence_spec(
            subject=subject,
            sex=config["demo_bodies"]["subjects"][subject],
            motion=motion,
            n_frames=config["demo_bodies"]["n_frames"],
            fps=config["demo_bodies"]["fps"],
            seed=config["seed"],
        )
    )


_DIGESTS = DigestCache(".snakemake/shapepose/registration-digests.json")
atexit.register(_DIGESTS.save)


def registrations_of(wildcards):
    """The registrations file holding this sequence; ancient: its mtime covers every sequence."""
    return ancient(registrations_path(SEX_OF[subject_of(wildcards.sequence)]))


def source_of(wildcards):
    """Digest of this one sequence's source data: the parameter that triggers its rerun."""
    path = registrations_path(SEX_OF[subject_of(wildcards.sequence)])
    expected = demo_spec(wildcards.sequence) if DEMO else None
    return source_digest(path, wildcards.sequence, _DIGESTS, expected_spec=expected)


def all_mesh_branch_outputs():
    return (
        expand(rules.extract_meshes.output.meshes, sequence=SEQUENCES)
        + expand(rules.sample_surface.output.samples, sequence=SEQUENCES)
        + expand(rules.sample_volume.output.samples, sequence=SEQUENCES)
        + expand(rules.render_meshes.output.renders, sequence=SEQUENCES)
    )
