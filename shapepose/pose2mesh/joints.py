"""The Human3.6M joint set as Pose2Mesh uses it, and where each joint sits on the demo body."""

from __future__ import annotations

JOINT_NAMES = ("Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso",
               "Neck", "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder",
               "R_Elbow", "R_Wrist")
N_JOINTS = len(JOINT_NAMES)
ROOT = 0  # Pelvis
SKELETON = ((0, 7), (7, 8), (8, 9), (9, 10), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15),
            (15, 16), (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6))
FLIP_PAIRS = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
# Protocol 2 scores these 14 (pelvis, torso and nose are left out)
EVAL_JOINTS = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

# the demo body's joint (shapepose.bodies.JOINT_NAMES) standing in for each Human3.6M joint
BODY_JOINT = {"Pelvis": "pelvis", "R_Hip": "r_hip", "R_Knee": "r_knee", "R_Ankle": "r_ankle",
              "L_Hip": "l_hip", "L_Knee": "l_knee", "L_Ankle": "l_ankle", "Torso": "spine",
              "Neck": "neck", "Nose": "head", "Head": "head_top", "L_Shoulder": "l_shoulder",
              "L_Elbow": "l_elbow", "L_Wrist": "l_wrist", "R_Shoulder": "r_shoulder",
              "R_Elbow": "r_elbow", "R_Wrist": "r_wrist"}

TRAIN_SUBJECTS = (1, 5, 6, 7, 8)  # protocol 2
TEST_SUBJECTS = (9, 11)
SUBJECT_SEX = {1: "f", 5: "f", 6: "m", 7: "f", 8: "m", 9: "m", 11: "m"}  # the release's genders
