"""Thin KFP components, one per step: each imports its step from `components` and calls it."""

from components.kfp_components.deploy import deploy
from components.kfp_components.evaluate import evaluate_and_promote
from components.kfp_components.features import features
from components.kfp_components.ingest import ingest
from components.kfp_components.monitor import monitor
from components.kfp_components.report import report
from components.kfp_components.score import score
from components.kfp_components.train import train
from components.kfp_components.transform import transform

__all__ = [
    "deploy",
    "evaluate_and_promote",
    "features",
    "ingest",
    "monitor",
    "report",
    "score",
    "train",
    "transform",
]
