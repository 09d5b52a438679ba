"""The Liquid Warping GAN's losses and metrics against independent definitions: the original
code's formulas written out by hand, closed forms and scikit-image."""

import numpy as np
import pytest
import torch
from torch import nn

from shapepose.lwgan.evaluate import frame_metrics, paste_baseline
from shapepose.lwgan.inputs import erode
from shapepose.lwgan.losses import (LossWeights, discriminator_terms, face_loss, generator_terms,
                                    head_boxes, mask_smoothness)
from shapepose.lwgan.train import Experiment, masked_l1

W = LossWeights(lambda_rec=10.0, lambda_tsf=10.0, lambda_face=5.0, lambda_mask=1.0,
                lambda_mask_smooth=1.0, lambda_adv=1.0, label_smoothing=0.0, gp_weight=0.0)


def fake_batch(seed=0, b=2, s=8):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.rand(*shape, generator=g)
    out = {"src_image": r(b, 3, s, s) * 2 - 1, "tsf_image": r(b, 3, s, s) * 2 - 1,
           "src_attention": r(b, 1, s, s) * 0.98 + 0.01, "tsf_attention": r(b, 1, s, s) * 0.98 + 0.01}
    inputs = {"src": r(b, 3, s, s) * 2 - 1, "ref": r(b, 3, s, s) * 2 - 1,
              "attention_target": (r(2 * b, 1, s, s) > 0.5).float(),
              "ref_cond": torch.zeros(b, 4, s, s)}
    return out, inputs


def test_generator_terms_as_the_original_writes_them():
    out, inputs = fake_batch()
    critic = lambda x: x.mean(dim=1, keepdim=True)  # any map of patch scores
    terms = generator_terms(out, inputs, critic, W, None, None)
    o, i = {k: v.double().numpy() for k, v in out.items()}, {k: v.double().numpy() for k, v in inputs.items()}
    rec = 10 * np.mean(np.abs(o["src_image"] - i["src"]))
    tsf = 10 * np.mean(np.abs(o["tsf_image"] - i["ref"]))  # --use_vgg off: L1
    m = np.concatenate([o["src_attention"], o["tsf_attention"]])
    t = i["attention_target"]
    bce = -np.mean(t * np.log(m) + (1 - t) * np.log(1 - m))  # torch.nn.BCELoss
    smooth = np.mean(np.abs(m[..., :, :-1] - m[..., :, 1:])) + np.mean(np.abs(m[..., :-1, :] - m[..., 1:, :]))
    adv = np.mean((o["tsf_image"].mean(1) - 0) ** 2)  # _compute_loss_D(d_fake, 0)
    for key, value in dict(g_rec=rec, g_tsf=tsf, g_mask=bce, g_mask_smooth=smooth, g_adv=adv).items():
        assert float(terms[key]) == pytest.approx(value, rel=1e-5), key
    assert float(terms["total"]) == pytest.approx(rec + tsf + bce + smooth + adv, rel=1e-5)
    assert "g_face" not in terms  # no face network: off


def test_discriminator_labels_smoothing_and_penalty():
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    critic = lambda x: 2 * x[:, :1] - 0.5
    d = discriminator_terms(critic, real, fake, W, None)
    r, f = (2 * real[:, :1] - 0.5).numpy(), (2 * fake[:, :1] - 0.5).numpy()
    assert float(d["d_real_loss"]) == pytest.approx(np.mean((r - 1) ** 2), rel=1e-6)
    assert float(d["d_fake_loss"]) == pytest.approx(np.mean((f + 1) ** 2), rel=1e-6)  # label -1
    assert float(d["d_real"]) == pytest.approx(r.mean(), rel=1e-6)
    smoothed = LossWeights(**{**vars(W), "label_smoothing": 0.1, "gp_weight": 10.0})
    d = discriminator_terms(critic, real, fake, smoothed, torch.Generator().manual_seed(0))
    assert float(d["d_real_loss"]) == pytest.approx(np.mean((r - 0.9) ** 2), rel=1e-6)
    # a linear critic 2 x_0: the summed map's gradient is 2 on channel 0 of every pixel,
    # norm 2 sqrt(64) = 16 at any mixture, so the penalty is 10 (16 - 1)^2
    assert float(d["d_gp"]) == pytest.approx(10 * 15 ** 2, rel=1e-5)


def test_mask_smoothness_closed_form():
    ramp = torch.arange(5.0).expand(1, 1, 5, 5) / 4  # +1/4 per column, constant down rows
    assert float(mask_smoothness(ramp)) == pytest.approx(0.25)


def test_erode_as_the_original_morph():
    mask = torch.zeros(1, 1, 7, 7)
    mask[..., 1:6, 1:6] = 1
    out = erode(mask, 3)
    expected = torch.zeros(1, 1, 7, 7)
    expected[..., 2:5, 2:5] = 1
    assert torch.equal(out, expected)
    assert torch.equal(erode(torch.ones(1, 1, 4, 4), 3), torch.ones(1, 1, 4, 4))  # padded with 1


def test_face_loss_plumbing_on_a_tiny_random_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 5, stride=4), nn.Flatten())
    cond = torch.zeros(2, 4, 16, 16)
    cond[:, 3] = 1
    cond[0, 1, 2:5, 6:9] = 0.9  # frame 0's head; frame 1 shows none
    cond[0, 3, 2:5, 6:9] = 0
    assert head_boxes(cond) == [(2, 5, 6, 9), None]
    real = torch.rand(2, 3, 16, 16)
    assert float(face_loss(net, real, real, cond)) == 0
    fake = real.clone()
    fake[1] = 0  # outside the only head box: no change
    assert float(face_loss(net, fake, real, cond)) == 0
    fake[0, :, 3, 7] += 1
    assert float(face_loss(net, fake, real, cond)) > 0
    terms = generator_terms(*fake_batch(), lambda x: x[:, :1], W, None, net)
    assert "g_face" in terms


def test_ssim_is_one_for_identical_images_and_psnr_follows_its_formula():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    body = np.zeros((32, 32), bool)
    body[8:24, 8:24] = True
    same = frame_metrics(ref, ref, body)
    assert same["ssim"] == pytest.approx(1.0) and same["masked_l1"] == 0 and same["psnr"] == np.inf
    noise = rng.choice([-3, 3], (32, 32, 3))
    pred = np.clip(ref.astype(int) + noise, 0, 255).astype(np.uint8)
    mse = np.mean((pred.astype(float) - ref) ** 2)
    m = frame_metrics(pred, ref, body)
    assert m["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert m["masked_l1"] == pytest.approx(np.abs(pred.astype(float) - ref)[body].mean() / 255)
    assert m["ssim"] < 1


def test_masked_l1_and_paste_baseline():
    pred, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    target[..., 1, 1] = 5
    assert float(masked_l1(pred, target, mask)) == 1.0
    src = torch.full((1, 3, 2, 2), 0.5)
    src[..., 0, 0] = -1  # the source's body pixel
    bg_flag = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    inputs = {"src": src, "src_in": torch.cat([src, torch.zeros(1, 3, 2, 2), bg_flag], 1),
              "valid": torch.tensor([[[False, True], [False, False]]]),
              "warped": torch.full((1, 3, 2, 2), 0.25)}
    out = paste_baseline(inputs)
    assert torch.allclose(out[..., 0, 1], torch.tensor(0.25))  # valid: the warped source
    assert torch.allclose(out[..., 0, 0], torch.tensor(0.5))  # source body: mean background
    assert torch.allclose(out[..., 1, 1], torch.tensor(0.5))


def test_ttur_schedule_and_settings():
    exp = Experiment(**vars(W), lr_g=4e-4, lr_d=1e-4, lr_final=1e-5, beta1=0.5, beta2=0.999,
                     decay_start_epoch=0, decay_epochs=15, spectral_norm=False)
    assert exp.learning_rates(0, 10) == (4e-4, 1e-4)
    g, d = exp.learning_rates(75, 10)  # 7.5 of 15 epochs: half way
    assert g == pytest.approx((4e-4 + 1e-5) / 2) and d == pytest.approx((1e-4 + 1e-5) / 2)
    assert exp.learning_rates(10 ** 6, 10) == pytest.approx((1e-5, 1e-5))
    with pytest.raises(ValueError, match="label_smoothing"):
        LossWeights(**{**vars(W), "label_smoothing": 1.0})


def test_learned_metrics_plumbing_on_tiny_random_networks(tmp_path):
    """LPIPS, FID and face similarity through TorchScript files, as configured weights are."""
    from scipy.linalg import sqrtm

    from shapepose.lwgan.learned_metrics import (NO_WEIGHTS, frechet_distance, learned_metrics,
                                                 lpips_distance)

    torch.manual_seed(0)

    class Taps(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 3, stride=2, padding=1)

        def forward(self, x):
            f1 = torch.relu(self.a(x))
            return [f1, torch.relu(self.b(f1))]

    lp = torch.jit.script(Taps())
    fid_net = torch.jit.script(nn.Sequential(nn.Conv2d(3, 3, 8, stride=8), nn.Flatten()))
    face = torch.jit.script(nn.Sequential(nn.Conv2d(3, 2, 8, stride=8), nn.Flatten()))
    paths = {}
    for name, net in (("lpips", lp), ("fid", fid_net), ("face", face)):
        paths[name] = str(tmp_path / f"{name}.pt")
        net.save(paths[name])
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = torch.rand(3, 3, 16, 16) * 2 - 1
    # LPIPS by hand: unit-normalized features, squared differences summed over channels
    d = 0
    for fx, fy in zip(lp(x), lp(y)):
        nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        d = d + ((nx - ny) ** 2).sum(1).mean((1, 2))
    torch.testing.assert_close(lpips_distance(lp, x, y), d)
    assert float(lpips_distance(lp, x, x).max()) == 0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(300, 3)) * 2 + 1
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    fake = rng.integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    cond = torch.zeros(4, 4, 16, 16)
    cond[:, 1, 2:6, 5:9] = 0.9
    out = learned_metrics(paths, fake, fake, cond)
    assert out["lpips"] == 0 and out["fid"] == pytest.approx(0, abs=1e-4)
    assert out["face_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert learned_metrics({}, fake, fake, cond) == {"lpips": NO_WEIGHTS, "fid": NO_WEIGHTS,
                                                     "face_similarity": NO_WEIGHTS}
