"""What GAN stages share: adversarial losses, stabilizers (label smoothing, gradient penalty, spectral norm, TTUR) and network helpers."""
