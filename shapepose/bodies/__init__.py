"""Procedural articulated demo bodies: one watertight template, identities, poses and motions."""

from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.demo import example_mesh, write_demo_bodies
from shapepose.bodies.model import Body, Identity, sample_identity
from shapepose.bodies.motions import MOTIONS, trajectory
from shapepose.bodies.skeleton import JOINT_NAMES, LIMITS, PARENTS
from shapepose.bodies.template import load_template

__all__ = ["Body", "Identity", "JOINT_NAMES", "LIMITS", "MOTIONS", "PARENTS", "example_mesh",
           "load_coarse_template", "load_template", "sample_identity", "trajectory", "write_demo_bodies"]
