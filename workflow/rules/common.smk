# Helpers shared across the workflow: dataset paths, the list of sequences, and their digests.
import atexit
import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the shapepose package lives beside the Snakefile

from snakemake.logging import logger

from shapepose.config import UNTRAINED, check_config
from shapepose.provenance import DigestCache, source_digest
from shapepose.replicates import replicate_seed


check_config(config)  # every check between parts of the config, in one tested function


# ---- Replicates: every trained model (and what it feeds) r0, r1, ... ---------------------------
# Replicate r of a stage trains from replicate_seed(seed, stage, r) and reads replicate r of the
# stages before it. A job's params never name the number of replicates, so raising `replicates`
# adds jobs for the new ones and reruns only the tables that pool them.

REPLICATES = list(range(config["replicates"]))


def training_seed(stage):
    """The `seed` param of a training rule: replicate_seed(config seed, stage, replicate)."""
    return lambda wildcards: replicate_seed(config["seed"], stage, int(wildcards.replicate))


def replicate_number(wildcards):
    """The `replicate` param of a rule: the wildcard as an integer."""
    return int(wildcards.replicate)


def memory_mb(first_attempt_mb):
    """A rule's `mem_mb`: `first_attempt_mb` on the first attempt, that much more on each retry.

    With `--retries` (profiles/slurm sets them), a job killed for exceeding its memory is retried
    with twice, then three times the memory; Snakemake calls the returned function per attempt.
    """
    return lambda wildcards, attempt: first_attempt_mb * attempt


DATASET = config["meshes"]["dataset"]
DEMO = config["meshes"]["registrations"] == "demo"
SEX_OF = {}  # subject -> "m" / "f"
AVAILABLE = set()  # keys present in downloaded registrations (DFAUST lacks some pairs)


def registrations_path(sex):
    """Where the registrations file of one sex is: downloaded, or assembled from the demo."""
    if DEMO:
        return f"results/demo_bodies/{DATASET}/registrations_{sex}.hdf5"
    return config["meshes"]["registrations"][sex]


def demo_sequence_path(name):
    """One demo sequence's own DFAUST-layout file ("registrations") or joints file ("joints")."""
    return f"results/demo_bodies/{DATASET}/sequences/{{sequence}}/{name}.hdf5"


def _find_subjects():
    """Map every configured subject to the file (sex) that holds it, failing early if absent."""
    subjects = config["meshes"]["subjects"]
    if DEMO:  # check_config has made sure every subject is a demo subject
        return {s: config["demo_bodies"]["subjects"][s] for s in subjects}
    from shapepose.dfaust import sequences_by_sex
    from shapepose.errors import InputError

    try:  # the one read of the downloaded files while the DAG is built: key names only
        sex_of_key = sequences_by_sex({sex: registrations_path(sex) for sex in ("m", "f")})
    except InputError as exc:
        raise ValueError(f"config: meshes.registrations: {exc}") from None
    found = {}
    for key, sex in sex_of_key.items():
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


def demo_model_version():
    """Changes whenever the generator's output would, so the demo sequences are remade."""
    from shapepose.bodies.demo import MODEL_VERSION

    return MODEL_VERSION


DEMO_SEQUENCES = [
    f"{s}_{q}" for s in config["demo_bodies"]["subjects"] for q in config["demo_bodies"]["sequences"]
]


def demo_sex(wildcards):
    return config["demo_bodies"]["subjects"][subject_of(wildcards.sequence)]


def demo_motion(wildcards):
    return wildcards.sequence.split("_", 1)[1]


_DIGESTS = DigestCache(".snakemake/shapepose/registration-digests.json")
atexit.register(_DIGESTS.save)


def registrations_of(wildcards):
    """The DFAUST-layout file holding this sequence.

    Demo: the sequence's own file, tracked by modification time. Downloaded: the file of its sex,
    through ancient() (its mtime covers every sequence) with `source_of` as the change signal.
    """
    if DEMO:
        return demo_sequence_path("registrations").format(sequence=wildcards.sequence)
    return ancient(registrations_path(SEX_OF[subject_of(wildcards.sequence)]))


def source_of(wildcards):
    """Digest of this one sequence's downloaded data: the parameter that triggers its rerun."""
    if DEMO:
        return "demo (tracked by file modification time)"
    path = registrations_path(SEX_OF[subject_of(wildcards.sequence)])
    return source_digest(path, wildcards.sequence, _DIGESTS)


def all_mesh_branch_outputs():
    demo = list(rules.make_demo_bodies.output) if DEMO else []
    return demo + (
        expand(rules.extract_meshes.output.meshes, sequence=SEQUENCES)
        + expand(rules.sample_surface.output.samples, sequence=SEQUENCES)
        + expand(rules.sample_volume.output.samples, sequence=SEQUENCES)
        + expand(rules.render_meshes.output.renders, sequence=SEQUENCES)
    )


# ---- Image branch (seed 002): where its inputs are, and what `all` asks for ---------------------

CARS = config["cars"]["dataset"]
CARS_DEMO = "demo" in (
    config["cars"]["synthetic"],
    config["cars"]["photos"],
    config["cars"]["segmenter_train"],
)
DEMO_CARS_DIR = f"results/demo_cars/{CARS}"


def _cars_input(key, demo_output):
    """A dataset the config names: the demo generator's output, or the downloaded path."""
    return demo_output if config["cars"][key] == "demo" else config["cars"][key]


def synthetic_root():
    """The DPC-layout folder (renders/, gt/downsampled/, splits/)."""
    return _cars_input("synthetic", f"{DEMO_CARS_DIR}/synthetic")


def photos_root():
    """The Stanford-Cars-layout root (cars_train/, cars_test/, devkit/)."""
    return _cars_input("photos", f"{DEMO_CARS_DIR}/photos")


def photos_truth():
    """Ground-truth instances of the demo photos, for scoring only; None for real photos."""
    return f"{DEMO_CARS_DIR}/photos_truth.json" if config["cars"]["photos"] == "demo" else None


def segmenter_train_set():
    """images/ + instances.json with known masks, or None (COCO weights are used as they are)."""
    return _cars_input("segmenter_train", f"{DEMO_CARS_DIR}/segmenter_train")



def segmenter_weights():
    """The weights `segment` loads: train_segmenter's export (of the `{replicate}` being
    segmented), or the configured checkpoint file (the same for every replicate)."""
    if config["segmentation"]["weights"] == "train":
        return rules.train_segmenter.output.model
    return config["segmentation"]["weights"]


def segmenter_arch():
    """How `segment` reads those weights: our export ("demo") or a torchvision COCO state dict."""
    return "demo" if config["segmentation"]["weights"] == "train" else config["segmentation"]["arch"]

def image_branch_outputs():
    """Everything the image branch produces that `rule all` asks for."""
    per_replicate = [
        rules.normalize_segments.output.train,
        rules.normalize_segments.output.test,
        *rules.tabulate_segments.output,
    ]
    return expand(per_replicate, replicate=REPLICATES) + list(rules.summarize_segments.output)


# ---- Neural Parts (seed 003): the split by sequence, and what `all` asks for --------------------

NEURAL_PARTS = config["neural_parts"]
NEURAL_PARTS_DIR = f"results/neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}"


def _neural_parts_split_sequences():
    """{"train": sequences of the train and val frames, "test": the test sequences}.

    Test sequences the data lack are skipped with a warning; evaluation then stops on an empty
    test split with one clear line, rather than the whole plan failing.
    """
    test = NEURAL_PARTS["split"]["test_sequences"]
    absent = [s for s in test if s not in SEQUENCES]
    if absent:
        logger.warning(f"shapepose: neural_parts.split.test_sequences {absent} are not in the data")
    return {
        "train": [s for s in SEQUENCES if s not in test],
        "test": [s for s in SEQUENCES if s in test],
    }


NEURAL_PARTS_SEQUENCES = _neural_parts_split_sequences()


def neural_parts_inputs(part):
    """Sample files and render directories of one split's sequences, in NEURAL_PARTS_SEQUENCES order."""
    sequences = NEURAL_PARTS_SEQUENCES[part]
    return {
        "surface": expand(rules.sample_surface.output.samples, sequence=sequences),
        "volume": expand(rules.sample_volume.output.samples, sequence=sequences),
        "renders": expand(rules.render_meshes.output.renders, sequence=sequences),
    }


def neural_parts_outputs():
    """Everything Neural Parts produces that `rule all` asks for."""
    counts = NEURAL_PARTS["primitives"]  # meshes and renders of the first replicate's models
    return (
        list(rules.tabulate_neural_parts.output)
        + expand(rules.export_neural_parts.output.primitives, n_primitives=counts, replicate=0)
        + expand(rules.export_neural_parts.output.views, n_primitives=counts, replicate=0)
    )


# ---- Style transfer (seed 002 chapter 4): experiments by name, and what `all` asks for ------------

STYLE = config["style_transfer"]
STYLE_EXPERIMENTS = list(STYLE["run"] or STYLE["experiments"])  # the ones this run trains
STYLE_DIR = f"results/style_transfer/{CARS}/{{experiment}}/r{{replicate}}"


def real_cutouts(split):
    """The real cut-outs of one split ("train" or "test"): normalized here (replicate r's, a
    `{replicate}` wildcard), or the config's folder (the same for every replicate)."""
    if config["cars"]["cutouts"] == "pipeline":
        return getattr(rules.normalize_segments.output, split)
    return f"{config['cars']['cutouts']}/{split}"


def style_experiment(wildcards):
    """One experiment's full settings: style_transfer.defaults with the experiment's own on top.

    A param per experiment, so changing one experiment's setting reruns that experiment only.
    """
    return {**STYLE["defaults"], **(STYLE["experiments"][wildcards.experiment] or {})}


def style_transfer_outputs():
    """Everything the style-transfer stage produces that `rule all` asks for."""
    return expand(
        [*rules.report_style_transfer.output, rules.stylize.output.data],
        experiment=STYLE_EXPERIMENTS,
        replicate=REPLICATES,
    ) + list(rules.tabulate_style_transfer.output)


# ---- Shape and pose (seed 002 chapters 5-6): variants, test sets, and what `all` asks for --------

SHAPE_POSE = config["shape_pose"]
SHAPE_POSE_VARIANTS = ["original", *STYLE_EXPERIMENTS]  # one trained model each
SHAPE_POSE_UNTRAINED = UNTRAINED  # the original variant's architecture at its step-0 weights
SHAPE_POSE_EVAL_VARIANTS = [*SHAPE_POSE_VARIANTS, SHAPE_POSE_UNTRAINED]
SHAPE_POSE_TEST_SETS = ["original", *STYLE_EXPERIMENTS]  # every test split, stylized or not
SHAPE_POSE_DIR = f"results/shape_pose/{CARS}/{{variant}}/r{{replicate}}"


def one_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(name) for name in names)


def _dpc_set(name, replicate):
    """The DPC-layout folder of one variant or test set: the renders, or the stylized copy made
    by one experiment's replicate."""
    if name in ("original", SHAPE_POSE_UNTRAINED):
        return synthetic_root()
    return expand(rules.stylize.output.data, experiment=name, replicate=replicate)[0]


def shape_pose_data(wildcards):
    """The set a variant trains on (and aligns its canonical frame with): untrained -> the renders."""
    return _dpc_set(wildcards.variant, wildcards.replicate)


def shape_pose_test_data(wildcards):
    """The set whose test split an evaluation scores (of the evaluated model's replicate)."""
    return _dpc_set(wildcards.test_set, wildcards.replicate)


def shape_pose_model(wildcards):
    """The exported model of a variant; the untrained row reads the original's (its seed and sizes)."""
    trained = "original" if wildcards.variant == SHAPE_POSE_UNTRAINED else wildcards.variant
    return expand(rules.train_shape_pose.output.model, variant=trained, replicate=wildcards.replicate)[0]


def shape_pose_untrained(wildcards):
    """True for the untrained row: the evaluation rebuilds the step-0 weights from the model file."""
    return wildcards.variant == SHAPE_POSE_UNTRAINED


# Each evaluation rule gets only the settings it reads, so that changing one setting reruns only
# the jobs that use it (the KDE's grid, for one, redraws the plot without rescoring anything).
_EVALUATION = SHAPE_POSE["evaluation"]
SHAPE_POSE_SCORING = {key: _EVALUATION[key] for key in ("points", "accuracy_threshold", "alignment")}
SHAPE_POSE_MASKING = {"real_masks": {key: _EVALUATION["real_masks"][key] for key in ("size", "point_radius")}}
SHAPE_POSE_KDE_POINTS = _EVALUATION["real_masks"]["kde_points"]


def shape_pose_outputs():
    """Everything the shape-and-pose stage produces that `all` asks for."""
    return list(rules.tabulate_shape_pose.output)


# ---- Learning (issue 15): which stages the learning table scores ----------------------------

def _learning_scale():
    """One line saying how big the runs behind the learning table were."""
    steps = {
        "shape and pose": SHAPE_POSE["training"]["steps"],
        "Neural Parts": NEURAL_PARTS["training"]["steps"],
        "style transfer": STYLE["training"]["steps"],
        "pose transfer": config["pose_transfer"]["training"]["steps"],
        "Pose2Mesh (MeshNet)": config["pose2mesh"]["meshnet"]["training"]["steps"],
        "Liquid Warping GAN": config["lwgan"]["training"]["steps"],
    }
    if segmenter_train_set() is not None:
        steps["segmenter"] = config["segmentation"]["train"]["steps"]
    said = ", ".join(f"{stage} {n}" for stage, n in steps.items())
    return f"{len(REPLICATES)} replicate(s) per trained model; training steps: {said}"


LEARNING_STYLE = [e for e in [config["learning"]["style_experiment"]] if e in STYLE_EXPERIMENTS]
LEARNING_SEGMENTER = segmenter_train_set() is not None
LEARNING_STAGES = ["shape_pose", "neural_parts"] + (["segmentation"] if LEARNING_SEGMENTER else []) + (
    ["style_transfer"] if LEARNING_STYLE else []
) + ["pose_transfer", "pose2mesh", "lwgan"]


# ---- Every wildcard's constraint, in one place --------------------------------------------------
# Names the config lists match exactly those names (`one_of`); counts and shard items are numbers.
# A variant is a trained one or the untrained row; `train_shape_pose` is only ever asked for the
# trained ones (`shape_pose_model` maps the untrained row to the original variant's model).

wildcard_constraints:
    sequence="[A-Za-z0-9]+_[A-Za-z0-9_]+",
    n_primitives=r"\d+",
    replicate=r"\d+",
    weights="trained|untrained",
    scatteritem=r"\d+-of-\d+",
    experiment=one_of(STYLE_EXPERIMENTS),
    variant=one_of(SHAPE_POSE_EVAL_VARIANTS),
    test_set=one_of(SHAPE_POSE_TEST_SETS),
