"""The fast path of the shared trainer on the CPU: mixed precision (bf16 autocast, fp16 with a
gradient scaler whose state resumes exactly), DataLoader workers that draw the inline batches,
losses read once per log window, and the out-of-memory message.

On the CPU every `auto` switch is off, so the default path is the plain one (the bit-identical
resume tests of test_training.py run it); these tests turn the switches on explicitly.
"""

import math

import pytest
import torch
import yaml

from shapepose.training import TrainingError, load_exported
from shapepose.training.fast import Acceleration, FastPath, resolve_precision

from helpers.configs import ROOT
from helpers.train_toy import Toy, ddp_toy_train, toy_config

STEPS = 12


def run(tmp, name, **kwargs):
    out = tmp / f"{name}.pt"
    result = ddp_toy_train(str(tmp / f"ck_{name}"), str(out), steps=STEPS, **kwargs)
    return load_exported(out), result


def test_config_yaml_fast_path_is_the_plain_path_on_the_cpu():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())["fast_path"]
    accel = Acceleration(FastPath.from_config(config), torch.device("cpu"), ("bf16", "fp16"))
    assert accel.describe() == {"precision": "fp32", "channels_last": False,
                                "cudnn_benchmark": False, "compile": False,
                                "loader_workers": config["loader_workers"], "pin_memory": False}
    assert accel.scaler is None and accel.dtype is None
    assert FastPath.from_config(None) == FastPath.off()


def test_precision_follows_the_device_and_what_the_stage_allows(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu, ("bf16", "fp16")) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda, ("bf16", "fp16")) == "bf16"
    assert resolve_precision("auto", cuda, ("fp16",)) == "fp16"
    assert resolve_precision("auto", cuda, ()) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", cuda, ("bf16", "fp16")) == "fp16"
    assert resolve_precision("bf16", cpu, ("bf16",)) == "bf16"
    with pytest.raises(ValueError, match="not allowed for this stage"):
        resolve_precision("fp16", cpu, ("bf16",))
    with pytest.raises(ValueError, match="precision must be"):
        FastPath.off(precision="fp8")


def test_bf16_autocast_trains_differently_but_as_well(tmp_path):
    fp32, _ = run(tmp_path, "fp32")
    bf16, _ = run(tmp_path, "bf16", fast_path={"precision": "bf16"})
    assert bf16["meta"]["fast_path"]["precision"] == "bf16"
    assert bf16["meta"]["fingerprint_hash"] != fp32["meta"]["fingerprint_hash"]
    diff = max((bf16["model"][k] - fp32["model"][k]).abs().max().item() for k in fp32["model"])
    assert 0 < diff < 0.05  # bf16 was used (weights differ) but the run is the same run
    losses = [float(r.split(",")[1]) for r in
              (tmp_path / "bf16.csv").read_text().splitlines()[1:]]
    assert losses[-1] < 0.2 * losses[0]


def test_fp16_scaler_state_resumes_bit_identically(tmp_path):
    whole, _ = run(tmp_path, "whole", fast_path={"precision": "fp16"}, checkpoint_every=4)
    ck = tmp_path / "ck_part"
    ddp_toy_train(str(ck), str(tmp_path / "half.pt"), steps=STEPS // 2, checkpoint_every=4,
                  fast_path={"precision": "fp16"})
    part, result = run(tmp_path, "part", fast_path={"precision": "fp16"}, checkpoint_every=4)
    assert result["resumed_from"] == STEPS // 2
    for key in whole["model"]:
        assert torch.equal(whole["model"][key], part["model"][key]), key
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "part.csv").read_bytes()
    from shapepose.training.checkpoint import read_checkpoint

    scale = read_checkpoint(ck / f"step_{STEPS:08d}.pt")["states"]["grad_scaler"]["scale"]
    assert scale == 2.0 ** 16  # no overflow in 12 steps: the initial scale, carried through


def test_loader_workers_draw_exactly_the_inline_batches(tmp_path):
    inline, _ = run(tmp_path, "inline")
    workers, _ = run(tmp_path, "workers", loader_workers=2)
    for key in inline["model"]:
        assert torch.equal(inline["model"][key], workers["model"][key]), key
    assert (tmp_path / "inline.csv").read_bytes() == (tmp_path / "workers.csv").read_bytes()


def test_losses_as_tensors_give_the_history_of_losses_as_floats(tmp_path):
    config = toy_config(10, checkpoint_every=5, log_every=5, record_every=1)
    histories = []
    for name, convert in (("floats", float), ("tensors", lambda t: t)):
        toy = Toy(3)

        def step_fn(step, toy=toy, convert=convert):
            out = toy.step_fn(step)  # a float; make the tensor the trainer would get instead
            return {"loss": convert(torch.tensor(out["loss"], dtype=torch.float32))}

        toy.trainer(tmp_path / name, config).fit(step_fn)
        histories.append((tmp_path / name / "history.csv").read_bytes())
    assert histories[0] == histories[1]


def test_non_finite_tensor_loss_is_named_with_its_own_step(tmp_path):
    toy = Toy(3)
    trainer = toy.trainer(tmp_path / "ck", toy_config(20, checkpoint_every=5, log_every=5))

    def step_fn(step):
        loss = toy.step_fn(step)["loss"]
        return {"loss": torch.tensor(math.inf if step == 6 else loss)}

    with pytest.raises(TrainingError, match="'loss' is inf at step 6"):
        trainer.fit(step_fn)  # read at step 10, reported as step 6; nothing saved after it
    assert sorted(p.name for p in (tmp_path / "ck").glob("step_*.pt")) == ["step_00000005.pt"]


def test_out_of_memory_names_the_rule_and_the_batch_size_to_lower(tmp_path):
    toy = Toy(3)
    trainer = toy.trainer(tmp_path / "ck", toy_config(20, checkpoint_every=5))
    trainer.rule, trainer.batch_size = "train_toy", ("toy.training.batch_size", 8)

    def step_fn(step):
        if step == 7:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return toy.step_fn(step)

    with pytest.raises(TrainingError) as info:
        trainer.fit(step_fn)
    message = str(info.value)
    assert "rule train_toy: out of memory" in message and "at step 7" in message
    assert "lower toy.training.batch_size (now 8)" in message
    assert "Traceback" not in message and "CUDA out of memory" not in message
