"""Procedural articulated demo bodies: one watertight template, identities, poses and motions.

The coarse template (shapepose.bodies.coarse, libigl) is not imported here, so that stages which
only need the fine bodies do not need libigl.
"""

from shapepose.bodies.demo import example_mesh, write_demo_bodies
from shapepose.bodies.model import Body, Identity, sample_identity
from shapepose.bodies.motions import MOTIONS, trajectory
from shapepose.bodies.skeleton import JOINT_NAMES, LIMITS, PARENTS
from shapepose.bodies.template import load_template

__all__ = ["Body", "Identity", "JOINT_NAMES", "LIMITS", "MOTIONS", "PARENTS", "example_mesh",
           "load_template", "sample_identity", "trajectory", "write_demo_bodies"]
