"""The shared trainer: exact resume after SIGKILL and SIGTERM, corrupt and stale checkpoints, best.

The oracle for resume is an uninterrupted run with the same seed: final weights must be equal bit
for bit. Step lists and the best step are computed by hand from the schedule in each test.
"""

import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from shapepose.errors import InputError
from shapepose.training import (
    SIGTERM_EXIT_STATUS, TrainConfig, Trainer, TrainingError, load_exported, pick_device)

from helpers.train_toy import Toy, toy_config, train_and_export

TOY = Path(__file__).resolve().parents[1] / "helpers" / "train_toy.py"
STEPS, CKPT_EVERY, LOG_EVERY, VAL_EVERY = 40, 10, 3, 7


def start_toy(tmp: Path, progress: Path) -> subprocess.Popen:
    """The toy trainer in a subprocess, slowed down so that it can be killed mid-way."""
    cmd = [sys.executable, str(TOY), "--dir", str(tmp / "ck"), "--out", str(tmp / "model.pt"),
           "--steps", str(STEPS), "--checkpoint-every", str(CKPT_EVERY),
           "--log-every", str(LOG_EVERY), "--validate-every", str(VAL_EVERY),
           "--sleep", "0.05", "--progress", str(progress)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rerun_toy(tmp: Path, caplog) -> str:
    """Run the toy again (as a rerun of the rule would) and return its log."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shapepose.training"):
        train_and_export(str(tmp / "ck"), str(tmp / "model.pt"), steps=STEPS,
                         checkpoint_every=CKPT_EVERY, log_every=LOG_EVERY,
                         validate_every=VAL_EVERY)
    return caplog.text


def wait_for_progress(progress: Path, proc: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        text = progress.read_text() if progress.exists() else ""
        if text and int(text) >= at_least:
            return int(text)
        time.sleep(0.01)
    raise AssertionError("toy trainer made no progress")


def history_rows(ck: Path) -> list[str]:
    """history.csv's lines: losses and metrics only, so runs compare byte for byte."""
    return (ck / "history.csv").read_text().splitlines()


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_exported(a)["model"], load_exported(b)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted toy run: the oracle for every interrupted one."""
    tmp = tmp_path_factory.mktemp("reference")
    train_and_export(str(tmp / "ck"), str(tmp / "model.pt"), steps=STEPS,
                     checkpoint_every=CKPT_EVERY, log_every=LOG_EVERY, validate_every=VAL_EVERY)
    return tmp


def test_reference_history_and_pruning(reference):
    # Rows at multiples of log_every and validate_every, and at the last step; nothing else.
    expected = sorted({s for s in range(1, STEPS + 1)
                       if s % LOG_EVERY == 0 or s % VAL_EVERY == 0 or s == STEPS})
    rows = history_rows(reference / "ck")
    assert [int(r.split(",")[0]) for r in rows[1:]] == expected
    assert "seconds_per_step" not in rows[0]
    timing = (reference / "ck" / "timing.csv").read_text().splitlines()
    assert timing[0] == "step,seconds_per_step"
    assert [int(r.split(",")[0]) for r in timing[1:]] == sorted(
        {s for s in range(1, STEPS + 1) if s % LOG_EVERY == 0 or s == STEPS})
    assert sorted(p.name for p in (reference / "ck").glob("step_*.pt")) == \
        ["step_00000030.pt", "step_00000040.pt"]
    assert (reference / "ck" / "best.pt").exists()


def test_resume_after_sigkill_is_bit_identical(tmp_path, reference, caplog):
    progress = tmp_path / "progress"
    proc = start_toy(tmp_path, progress)
    # Past the first checkpoint (step 10) and a few steps more, so some work is lost and redone.
    wait_for_progress(progress, proc, CKPT_EVERY + 4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    ck = tmp_path / "ck"
    steps = sorted(int(p.stem[5:]) for p in ck.glob("step_*.pt"))
    assert steps and steps[-1] < STEPS and not (tmp_path / "model.pt").exists()

    assert f"resuming from step {steps[-1]}" in rerun_toy(tmp_path, caplog)
    assert_same_weights(tmp_path / "model.pt", reference / "model.pt")
    # Rows from before the kill and after the resume, each step once, values as uninterrupted.
    assert history_rows(ck) == history_rows(reference / "ck")


def test_sigterm_checkpoints_exits_143_and_resumes(tmp_path, reference, caplog):
    progress = tmp_path / "progress"
    proc = start_toy(tmp_path, progress)
    reached = wait_for_progress(progress, proc, 13)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == SIGTERM_EXIT_STATUS == 143, stderr
    assert time.monotonic() - sent < 20  # promptly: one step, not the rest of training
    line = [x for x in stderr.splitlines() if "SIGTERM" in x]
    assert len(line) == 1, stderr
    stopped = int(line[0].split("stopped after step ")[1].split()[0])
    assert reached <= stopped < STEPS
    checkpoint = tmp_path / "ck" / f"step_{stopped:08d}.pt"
    assert checkpoint.exists() and str(checkpoint) in line[0]
    assert not (tmp_path / "model.pt").exists()

    assert f"resuming from step {stopped}" in rerun_toy(tmp_path, caplog)
    assert_same_weights(tmp_path / "model.pt", reference / "model.pt")
    assert history_rows(tmp_path / "ck") == history_rows(reference / "ck")


# ------------------------------------------------------------------ in-process tests

SMALL = toy_config(20, checkpoint_every=5, log_every=5)


def train(ck: Path, config: TrainConfig = SMALL, fingerprint=None, seed: int = 3):
    toy = Toy(seed)
    trainer = toy.trainer(ck, config, fingerprint)
    return toy, trainer, trainer.fit(toy.step_fn, toy.validate_fn)


def final_weights(toy: Toy) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in toy.net.state_dict().items()}


def assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, caplog):
    ref_toy, _, _ = train(tmp_path / "ref")
    ck = tmp_path / "ck"
    train(ck)
    newest = ck / "step_00000020.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk
    with caplog.at_level(logging.INFO, logger="shapepose.training"):
        toy, _, result = train(ck)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"checkpoint {newest} is unreadable" in errors[0].getMessage()
    assert f"using {ck / 'step_00000015.pt'}" in errors[0].getMessage()
    assert result.resumed_from == 15 and result.step == 20
    assert_equal_states(final_weights(toy), final_weights(ref_toy))
    assert (ck / "corrupt" / "step_00000020.pt").exists()


def test_damaged_checkpoints_everywhere_start_fresh(tmp_path, caplog):
    ref_toy, _, _ = train(tmp_path / "ref")
    ck = tmp_path / "ck"
    train(ck)
    for path in ck.glob("step_*.pt"):
        data = bytearray(path.read_bytes())
        data[len(data) // 2: len(data) // 2 + 16] = b"\x00" * 16  # same length, damaged inside
        path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="shapepose.training"):
        toy, _, result = train(ck)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2 and all("sha256 mismatch" in m for m in messages)
    assert "using none: starting from step 0" in messages[-1]
    assert result.resumed_from is None
    assert_equal_states(final_weights(toy), final_weights(ref_toy))


def test_fingerprint_change_sets_old_checkpoints_aside(tmp_path, caplog):
    ck = tmp_path / "ck"
    train(ck, fingerprint={"lr": 0.05})
    fresh_toy, _, _ = train(tmp_path / "fresh", fingerprint={"lr": 0.01})
    with caplog.at_level(logging.WARNING, logger="shapepose.training"):
        toy, _, result = train(ck, fingerprint={"lr": 0.01})
    assert result.resumed_from is None
    assert any("another configuration" in r.getMessage() for r in caplog.records)
    stale = list((ck / "stale").iterdir())
    assert len(stale) == 1 and len(stale[0].name) == 8
    assert sorted(p.name for p in stale[0].glob("step_*.pt")) == \
        ["step_00000015.pt", "step_00000020.pt"]
    assert_equal_states(final_weights(toy), final_weights(fresh_toy))


def test_non_finite_loss_stops_with_one_clear_error(tmp_path):
    toy = Toy(3)
    trainer = toy.trainer(tmp_path / "ck", SMALL)
    before = signal.getsignal(signal.SIGTERM)

    def step_fn(step):
        losses = toy.step_fn(step)
        return {"loss": math.nan if step == 7 else losses["loss"]}

    with pytest.raises(TrainingError) as info:
        trainer.fit(step_fn)
    assert isinstance(info.value, InputError)
    message = str(info.value)
    assert str(tmp_path / "ck") in message and "step 7" in message and "'loss'" in message
    assert sorted(p.name for p in (tmp_path / "ck").glob("step_*.pt")) == ["step_00000005.pt"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_best_checkpoint_follows_the_best_validation_metric(tmp_path):
    scripted = [5.0, 3.0, 4.0, 1.0, 2.0]  # validations at steps 2, 4, 6, 8, 10
    toy = Toy(3)
    snapshots = {}

    def validate_fn():
        step = 2 * (len(snapshots) + 1)
        snapshots[step] = final_weights(toy)
        return {"score": scripted[len(snapshots) - 1]}

    config = toy_config(10, checkpoint_every=3, validate_every=2, log_every=5,
                         best_metric="score", best_mode="min")
    trainer = toy.trainer(tmp_path / "ck", config)
    result = trainer.fit(toy.step_fn, validate_fn)
    assert result.best_step == 8 and result.best_metrics == {"score": 1.0}
    trainer.export(tmp_path / "best.pt", which="best")
    exported = load_exported(tmp_path / "best.pt")
    assert exported["meta"]["step"] == 8 and exported["meta"]["metrics"] == {"score": 1.0}
    assert_equal_states(exported["model"], snapshots[8])
    trainer.export(tmp_path / "last.pt", which="last")
    assert_equal_states(load_exported(tmp_path / "last.pt")["model"], snapshots[10])


def test_best_mode_max_and_fallback_to_last(tmp_path):
    toy = Toy(3)
    values = iter([1.0, 7.0, 2.0])
    config = toy_config(6, checkpoint_every=6, validate_every=2, best_metric="acc",
                         best_mode="max")
    trainer = toy.trainer(tmp_path / "ck", config)
    assert trainer.fit(toy.step_fn, lambda: {"acc": next(values)}).best_step == 4

    plain = Toy(3)
    trainer = plain.trainer(tmp_path / "plain", toy_config(4, checkpoint_every=2))
    trainer.fit(plain.step_fn)
    trainer.export(tmp_path / "model.pt", which="best")
    data = load_exported(tmp_path / "model.pt")
    assert data["meta"]["which"] == "last" and data["meta"]["step"] == 4
    assert_equal_states(data["model"], final_weights(plain))


def test_export_round_trip_and_errors(tmp_path):
    toy = Toy(3)
    trainer = toy.trainer(tmp_path / "ck", SMALL, fingerprint={"lr": 0.05, "data": "demo"})
    with pytest.raises(TrainingError, match="not complete"):
        trainer.export(tmp_path / "early.pt")
    assert not (tmp_path / "early.pt").exists()
    before = signal.getsignal(signal.SIGTERM)
    trainer.fit(toy.step_fn)
    assert signal.getsignal(signal.SIGTERM) is before
    out = trainer.export(tmp_path / "model.pt", which="last", extra={"classes": ["car"]})
    data = load_exported(out)
    assert_equal_states(data["model"], final_weights(toy))
    meta = data["meta"]
    assert meta["step"] == 20 and meta["extra"] == {"classes": ["car"]}
    assert meta["fingerprint"] == {"lr": 0.05, "data": "demo"} and meta["lr"] == 0.05
    # A second fit finds the run complete and does not train again.
    again = toy.trainer(tmp_path / "ck", SMALL, fingerprint={"lr": 0.05, "data": "demo"})
    assert again.fit(toy.step_fn).resumed_from == 20

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=str(garbage)):
        load_exported(garbage)
    with pytest.raises(InputError, match="does not exist"):
        load_exported(tmp_path / "missing.pt")


def test_unwritable_checkpoint_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ck = blocker / "ck"  # a directory under a regular file cannot exist, even for root
    toy = Toy(3)
    with pytest.raises(TrainingError, match=f"{ck}.*not writable"):
        toy.trainer(ck, SMALL).fit(toy.step_fn)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_checkpoint_directory_is_one_clear_error(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    ck.chmod(0o500)
    toy = Toy(3)
    try:
        with pytest.raises(TrainingError, match=f"{ck}.*not writable"):
            toy.trainer(ck, SMALL).fit(toy.step_fn)
    finally:
        ck.chmod(0o700)
    assert list(ck.iterdir()) == []


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        pick_device("tpu")
    with pytest.raises(ValueError):
        pick_device("cuda:99")


def test_trainer_steps_the_lr_schedulers_and_writes_the_rules_losses_csv(tmp_path):
    toy = Toy(3)
    trainer = toy.trainer(tmp_path / "ck", toy_config(9, checkpoint_every=3, record_every=1))
    with pytest.raises(TrainingError, match="not complete"):
        trainer.write_losses(tmp_path / "losses.csv")
    trainer.fit(toy.step_fn)
    # StepLR(step_size 4, gamma 0.8) after 9 scheduler steps: 0.05 * 0.8 ** (9 // 4)
    assert toy.opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.8 ** 2, rel=1e-12)
    trainer.write_losses(tmp_path / "losses.csv")
    text = (tmp_path / "losses.csv").read_text()
    assert text == (tmp_path / "ck" / "history.csv").read_text()
    assert text.splitlines()[0] == "step,loss" and len(text.splitlines()) == 1 + 9


def test_the_stage_is_part_of_a_runs_identity(tmp_path):
    toy = Toy(3)
    toy.trainer(tmp_path / "ck", SMALL).fit(toy.step_fn)
    other = Toy(3)
    renamed = Trainer(tmp_path / "ck", fingerprint={"toy": "mlp"}, seed=3, stage="another",
                      modules={"model": other.net}, optimizers={"adam": other.opt},
                      lr_schedulers={"lr": other.sched}, config=SMALL, device="cpu")
    assert renamed.fingerprint_hash != toy.trainer(tmp_path / "ck", SMALL).fingerprint_hash
    with pytest.raises(ValueError, match="both lr_schedulers and states"):
        Trainer(tmp_path / "x", fingerprint={}, seed=3, stage="toy", modules={"m": other.net},
                lr_schedulers={"lr": other.sched}, states={"lr": other.sched}, config=SMALL)
