"""Named motion sequences (DFAUST's names), each a smooth function of time.

A motion maps the phase u = 2 pi f t (radians, f its frequency in Hz) to Euler angles (T, J, 3)
and a root translation (T, 3). Every channel is built from sinusoids and squared half-sines, so
trajectories are at least C1 (no jumps, no kinks), and every angle stays inside the joint limits
by construction (tests check both). Each subject performs a motion with its own speed, amplitude,
phase and slow drift, drawn from a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from shapepose.bodies.skeleton import JOINT_NAMES, N_JOINTS

_INDEX = {name: j for j, name in enumerate(JOINT_NAMES)}


class _Pose:
    """Accumulates Euler angles (T, J, 3) and root translation (T, 3) for phases u (T,)."""

    def __init__(self, u: np.ndarray):
        self.u = u
        self.euler = np.zeros((len(u), N_JOINTS, 3))
        self.translation = np.zeros((len(u), 3))

    def set(self, joint: str, x=0.0, y=0.0, z=0.0) -> None:
        """Angles of one joint in its raw (world-aligned) axes."""
        for axis, value in enumerate((x, y, z)):
            self.euler[:, _INDEX[joint], axis] = value

    def limb(self, side: str, joint: str, x=0.0, y=0.0, z=0.0) -> None:
        """Angles of a left/right joint, given as for the left side; the right side is mirrored.

        So +z is abduction (or collar elevation) on both sides, and the same numbers on both
        sides give a symmetric pose.
        """
        sign = 1.0 if side == "l" else -1.0
        self.set(f"{side}_{joint}", x, sign * np.asarray(y), sign * np.asarray(z))

    def limbs(self, joint: str, x=0.0, y=0.0, z=0.0) -> None:
        """The same (mirrored) angles on both sides."""
        for side in "lr":
            self.limb(side, joint, x, y, z)

    def move(self, x=0.0, y=0.0, z=0.0) -> None:
        """Root translation in metres."""
        # broadcast against u so constants and per-frame arrays mix freely
        self.translation[:] = np.stack(np.broadcast_arrays(x, y, z, self.u)[:3], axis=-1)


def _rise(u):
    """(1 - cos u) / 2: 0 -> 1 -> 0 over one cycle, smooth."""
    return 0.5 - 0.5 * np.cos(u)


def _pulse(u):
    """max(0, sin u)^2: one smooth bump in the first half of each cycle, rest in the second (C1)."""
    return np.maximum(np.sin(u), 0.0) ** 2


def _chicken_wings(p: _Pose) -> None:
    flap = _rise(p.u)
    # upper arms turned inward so the folded forearms tuck the hands in front of the chest
    p.limbs("shoulder", x=0.1, y=-0.7, z=-0.25 + 0.37 * flap)
    p.limbs("elbow", x=-2.2 + 0.1 * flap)
    p.limbs("wrist", x=0.3)
    p.limbs("collar", z=0.08 * flap)
    p.set("chest", x=0.05)
    p.limbs("knee", x=0.05)


def _hips(p: _Pose) -> None:
    c, s = np.cos(p.u), np.sin(p.u)
    p.set("pelvis", x=0.12 * c, z=0.12 * s)
    p.set("spine", x=-0.1 * c, z=-0.1 * s)
    p.set("chest", x=-0.03 * c, z=-0.03 * s)
    # the legs turn back against the pelvis so the feet stay planted
    p.set("l_hip", x=-0.12 * c, z=-0.12 * s)
    p.set("r_hip", x=-0.12 * c, z=-0.12 * s)
    p.limbs("knee", x=0.1)
    p.limbs("shoulder", x=-0.1)
    p.limbs("elbow", x=-0.3)
    p.move(x=0.06 * s, z=0.06 * c)


def _jumping_jacks(p: _Pose) -> None:
    u = p.u
    spread = _rise(u)  # 0 closed, 1 open; a hop between each
    flight = np.sin(u) ** 2
    p.limbs("hip", x=-0.05, z=0.3 * spread)
    p.limbs("knee", x=0.12 + 0.2 * np.cos(u) ** 2)
    p.limbs("ankle", x=-0.15 * np.cos(u) ** 2 + 0.35 * flight)
    p.limbs("shoulder", x=-1.6 * spread)
    p.limbs("elbow", x=-0.2 - 0.2 * spread)
    p.move(y=0.07 * flight)


def _knees(p: _Pose) -> None:
    left, right = _pulse(p.u), _pulse(p.u + np.pi)
    for side, lift, other in (("l", left, right), ("r", right, left)):
        p.limb(side, "hip", x=-0.8 * lift)
        p.limb(side, "knee", x=1.5 * lift)
        p.limb(side, "ankle", x=0.3 * lift)
        p.limb(side, "shoulder", x=0.25 * (lift - other))
        p.limb(side, "elbow", x=-0.4)
    p.set("spine", x=0.05 * (left + right))


def _hop(p: _Pose, knee_bend: float) -> np.ndarray:
    """One hop per cycle; returns the flight curve (0 on the ground, 1 at the top)."""
    flight = _rise(p.u)
    p.limbs("ankle", x=0.3 * flight)
    p.limbs("hip", x=-0.03 - knee_bend * 0.3 * (1 - flight))
    p.limbs("knee", x=0.05 + knee_bend * (1 - flight))
    p.move(y=0.05 * flight)
    return flight


def _light_hopping_stiff(p: _Pose) -> None:
    _hop(p, knee_bend=0.0)
    p.limbs("shoulder", x=0.0, z=-0.05)
    p.limbs("elbow", x=-0.15)


def _light_hopping_loose(p: _Pose) -> None:
    _hop(p, knee_bend=0.35)
    u = p.u
    p.limbs("shoulder", x=0.15 * np.sin(u - 1.0))
    p.limbs("elbow", x=-0.4 - 0.25 * _rise(u - 1.5))
    p.limbs("wrist", x=0.3 * np.sin(u - 2.0))
    p.set("neck", x=0.05 * np.sin(u - 0.5))


def _jiggle_on_toes(p: _Pose) -> None:
    s = np.sin(p.u)
    p.limbs("ankle", x=0.45 + 0.1 * s)  # heels up: the root rises with the ankles
    p.limbs("knee", x=0.08 - 0.04 * s)
    p.limbs("shoulder", x=0.05 * s)
    p.limbs("elbow", x=-0.2)
    p.move(y=0.05 + 0.01 * s)


def _one_leg_jump(p: _Pose) -> None:
    flight = _rise(p.u)
    p.limb("r", "hip", x=-0.5)
    p.limb("r", "knee", x=1.4 + 0.1 * flight)
    p.limb("l", "knee", x=0.1 + 0.25 * (1 - flight))
    p.limb("l", "hip", x=-0.05 - 0.1 * (1 - flight))
    p.limb("l", "ankle", x=0.35 * flight - 0.1 * (1 - flight))
    p.limbs("shoulder", x=-0.4, z=0.05)
    p.limbs("elbow", x=-0.6)
    p.set("pelvis", z=-0.05)
    p.move(y=0.05 * flight)


def _one_leg_loose(p: _Pose) -> None:
    u = p.u
    p.limb("l", "hip", x=-0.35 + 0.35 * np.sin(u), z=0.05 + 0.05 * np.sin(u))
    p.limb("l", "knee", x=0.6 + 0.5 * np.sin(u - 1.2))
    p.limb("l", "ankle", x=0.2 * np.sin(u - 2.0))
    p.limb("r", "knee", x=0.05)
    p.limbs("shoulder", x=0.1 * np.sin(u + np.pi), z=0.05)
    p.limbs("elbow", x=-0.3)
    p.set("pelvis", z=0.04)


def _punching(p: _Pose) -> None:
    left, right = _pulse(p.u), _pulse(p.u + np.pi)
    for side, punch in (("l", left), ("r", right)):
        p.limb(side, "shoulder", x=-0.7 - 0.65 * punch, y=-0.2 * punch, z=-0.1)
        p.limb(side, "elbow", x=-2.0 + 1.8 * punch)
        p.limb(side, "wrist", x=-0.1)
    p.set("chest", y=0.15 * (right - left))  # the torso turns into each punch
    p.set("spine", y=0.08 * (right - left))
    p.limbs("knee", x=0.12)
    p.limb("l", "hip", x=-0.12)
    p.limb("r", "hip", x=-0.04)


def _running_on_spot(p: _Pose) -> None:
    u = p.u
    for side, v in (("l", u), ("r", u + np.pi)):
        # high knees: the knee bends most while the thigh is forward, so the feet stay under
        p.limb(side, "hip", x=-0.35 + 0.35 * np.sin(v))
        p.limb(side, "knee", x=0.75 - 0.65 * np.sin(v - 0.3))
        p.limb(side, "ankle", x=0.25 * np.sin(v + 1.0))
        p.limb(side, "shoulder", x=-0.45 * np.sin(v + np.pi))
        p.limb(side, "elbow", x=-1.4)
    p.set("spine", x=0.1)
    p.set("chest", y=0.12 * np.sin(u))
    p.move(y=0.035 * np.sin(u) ** 2)  # two flight phases per stride


def _shake_arms(p: _Pose) -> None:
    u = p.u
    for side, v in (("l", u), ("r", u + np.pi / 2)):
        p.limb(side, "shoulder", x=-0.9 + 0.25 * np.sin(v), z=-0.05)
        p.limb(side, "elbow", x=-0.3 + 0.25 * np.sin(v - 1.0))
        p.limb(side, "wrist", x=0.5 * np.sin(v - 2.0))
    p.limbs("knee", x=0.08)


def _shake_hips(p: _Pose) -> None:
    s = np.sin(p.u)
    p.set("pelvis", y=0.3 * s, z=0.08 * np.sin(p.u + 0.5))
    p.set("spine", y=-0.2 * s)
    p.set("chest", y=-0.08 * s)
    p.set("l_hip", y=-0.3 * s)  # legs twist back so the feet stay put
    p.set("r_hip", y=-0.3 * s)
    p.limbs("knee", x=0.15)
    p.limbs("elbow", x=-0.5)
    p.move(x=0.03 * s)


def _shake_shoulders(p: _Pose) -> None:
    s = np.sin(p.u)
    for side, shrug in (("l", 0.06 + 0.06 * s), ("r", 0.06 - 0.06 * s)):
        p.limb(side, "collar", z=shrug)
        # the shoulder turns back against the collar: the arm is lifted, not swung outward
        p.limb(side, "shoulder", x=0.1 * np.sin(p.u - 1.0), z=-shrug)
    p.set("chest", y=0.2 * s)
    p.set("spine", y=0.08 * s)
    p.limbs("elbow", x=-0.3)
    p.limbs("knee", x=0.08)


@dataclass(frozen=True)
class Motion:
    """A periodic motion: `frequency` cycles per second at speed 1, `build` fills a `_Pose`."""

    frequency: float
    build: Callable[[_Pose], None]
    description: str

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Euler angles (T, J, 3) and root translation (T, 3) at phases u (T,) radians."""
        pose = _Pose(np.asarray(u, dtype=np.float64))
        self.build(pose)
        return pose.euler, pose.translation


MOTIONS: dict[str, Motion] = {
    "chicken_wings": Motion(1.0, _chicken_wings, "elbows bent, flapping the upper arms"),
    "hips": Motion(0.5, _hips, "slow hip circles"),
    "jiggle_on_toes": Motion(3.0, _jiggle_on_toes, "bouncing lightly on the toes"),
    "jumping_jacks": Motion(0.9, _jumping_jacks, "hops opening the legs, arms raised forward"),
    "knees": Motion(0.6, _knees, "alternating knee raises"),
    "light_hopping_loose": Motion(2.0, _light_hopping_loose, "small hops, loose knees and arms"),
    "light_hopping_stiff": Motion(2.0, _light_hopping_stiff, "small hops, straight legs"),
    "one_leg_jump": Motion(1.6, _one_leg_jump, "hopping on the left leg"),
    "one_leg_loose": Motion(1.2, _one_leg_loose, "swinging the free left leg"),
    "punching": Motion(0.8, _punching, "alternating straight punches"),
    "running_on_spot": Motion(1.3, _running_on_spot, "running in place"),
    "shake_arms": Motion(3.0, _shake_arms, "arms held forward, shaken"),
    "shake_hips": Motion(2.0, _shake_hips, "twisting the hips"),
    "shake_shoulders": Motion(2.5, _shake_shoulders, "alternating shoulder shrugs"),
}
"""Every motion the demo can perform, by DFAUST sequence name."""


@dataclass(frozen=True)
class Variation:
    """How one subject performs a motion: speed and amplitude factors, start phase (radians),
    and a slow horizontal drift of the root (m/s, x and z)."""

    speed: float = 1.0
    amplitude: float = 1.0
    phase: float = 0.0
    drift: tuple[float, float] = (0.0, 0.0)


def sample_variation(rng: np.random.Generator) -> Variation:
    """A subject's small personal variation of a motion. Amplitude never exceeds 1, so angles
    (whose limits all contain 0) stay inside the limits."""
    speed = float(rng.uniform(0.9, 1.1))
    amplitude = float(rng.uniform(0.85, 1.0))
    phase = float(rng.uniform(0.0, 2 * np.pi))
    drift = tuple(float(d) for d in rng.normal(0.0, 0.01, 2))
    return Variation(speed, amplitude, phase, drift)


def trajectory(name: str, times: np.ndarray,
               variation: Variation = Variation()) -> tuple[np.ndarray, np.ndarray]:
    """Motion `name` at `times` (T,) seconds: Euler angles (T, J, 3), root translation (T, 3)."""
    if name not in MOTIONS:
        raise ValueError(f"unknown motion {name!r}; available: {', '.join(sorted(MOTIONS))}")
    motion = MOTIONS[name]
    times = np.asarray(times, dtype=np.float64)
    u = 2 * np.pi * motion.frequency * variation.speed * times + variation.phase
    euler, translation = motion(u)
    translation = variation.amplitude * translation
    translation[:, 0] += variation.drift[0] * times
    translation[:, 2] += variation.drift[1] * times
    return variation.amplitude * euler, translation
