"""A training rule's launch (`shapepose.training.distributed.run_training`): the rule's `gpu` resource is the
number of processes, their log lines land in the rule's log (rank 0's progress, other ranks'
warnings), bad input on the ranks ends the job with one ERROR line, and SIGTERM to the launcher
checkpoints every rank's run and exits 143, from which a rerun in one process resumes.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shapepose.training import load_exported
from shapepose.training.distributed import run_training
from shapepose.workflow import script_logging

from helpers.train_toy import ddp_toy_train, failing_train

TOY = Path(__file__).resolve().parents[1] / "helpers" / "train_toy.py"


class FakeSnakemake:
    """What the entry scripts read of the `snakemake` object."""

    def __init__(self, tmp: Path, gpu: int):
        self.rule = "train_toy"
        self.threads = 1
        self.log = [str(tmp / "train.log")]
        self.output = [str(tmp / "model.pt")]
        self.wildcards = {}
        self.resources = {"gpu": gpu}
        self.config = {"fast_path": None}


def test_gpu_2_trains_in_two_processes_and_rank_0_writes(tmp_path):
    snake = FakeSnakemake(tmp_path, gpu=2)
    with script_logging(snake):
        result = run_training(snake, ddp_toy_train, checkpoint_dir=str(tmp_path / "ck"),
                              out=str(tmp_path / "model.pt"), steps=6)
    assert result["step"] == 6
    assert load_exported(tmp_path / "model.pt")["meta"]["world_size"] == 2
    log = (tmp_path / "train.log").read_text()
    assert "launching 2 training processes" in log
    assert "INFO [rank 0] shapepose.training: exported last state" in log
    assert "INFO [rank 1]" not in log


def test_bad_input_on_the_ranks_ends_with_one_error_line(tmp_path):
    snake = FakeSnakemake(tmp_path, gpu=2)
    with pytest.raises(SystemExit) as info:
        with script_logging(snake):
            run_training(snake, failing_train, checkpoint_dir=str(tmp_path / "ck"))
    assert info.value.code == 1
    log = (tmp_path / "train.log").read_text()
    assert f"ERROR: [rank 0] file {tmp_path / 'ck' / 'data.h5'}: frame 3 has no vertices" in log
    assert "ERROR: training process of rank" in log and "Traceback" not in log


def test_sigterm_to_the_launcher_checkpoints_both_ranks_and_one_process_resumes(tmp_path):
    progress = tmp_path / "progress"
    cmd = [sys.executable, str(TOY), "--processes", "2", "--dir", str(tmp_path / "ck"),
           "--out", str(tmp_path / "model.pt"), "--steps", "400", "--checkpoint-every", "100",
           "--sleep", "0.05", "--progress", str(progress)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (progress.exists() and progress.read_text() and int(progress.read_text()) >= 5):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the launched toy made no progress"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr[-3000:]
    saved = sorted(int(p.stem[5:]) for p in (tmp_path / "ck").glob("step_*.pt"))
    assert len(saved) == 1 and 5 <= saved[0] < 100, saved
    assert not (tmp_path / "model.pt").exists()
    result = ddp_toy_train(str(tmp_path / "ck"), str(tmp_path / "model.pt"), steps=saved[0] + 3,
                           checkpoint_every=100)
    assert result["resumed_from"] == saved[0]


def test_a_script_without_a_main_guard_launches_once(tmp_path):
    """Snakemake runs `script:` files as `python script.py`, with no `if __name__` guard: the
    spawned workers must not run the script again."""
    script = tmp_path / "train_script.py"
    tests = Path(__file__).resolve().parents[1]
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(tests.parent)!r}, {str(tests)!r}]\n"
        "from shapepose.training.distributed import launch\n"
        "from helpers.train_toy import ddp_toy_train\n"
        "print('script top level ran', flush=True)\n"
        f"launch(ddp_toy_train, dict(checkpoint_dir={str(tmp_path / 'ck')!r}, "
        f"out={str(tmp_path / 'model.pt')!r}, steps=4), processes=2)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("script top level ran") == 1
    assert load_exported(tmp_path / "model.pt")["meta"]["world_size"] == 2


def training_rules() -> dict[str, str]:
    """{rule name: its text} of every `train_*` rule in workflow/rules/."""
    import re

    rules = {}
    for path in sorted((Path(__file__).resolve().parents[2] / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^( *)rule (train_\w+):\n(.*?)(?=^\1rule |\Z)", text, re.S | re.M):
            rules[match.group(2)] = match.group(3)
    return rules


def test_every_training_rule_declares_one_node_and_its_gpu_memory():
    rules = training_rules()
    assert set(rules) == {"train_segmenter", "train_style_transfer", "train_shape_pose",
                          "train_neural_parts", "train_pose_transfer", "train_posenet",
                          "train_meshnet", "train_lwgan"}
    for name, text in rules.items():
        assert "gpu=1," in text and "nodes=1," in text, name
        memory = [line for line in text.splitlines() if "gpu_mem_mb=" in line]
        assert len(memory) == 1, name
        # the number says where it comes from: measured on a GPU, or estimated from the CPU
        assert "measured" in memory[0] or "estimated" in memory[0], (name, memory[0])
        assert "run_training(" in (Path(__file__).resolve().parents[2] / "scripts" /
                                   f"{name}.py").read_text(), name
