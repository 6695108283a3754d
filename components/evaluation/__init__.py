"""Stage 5, evaluation: the candidate against the `champion` on the same held-out window, and the promotion
decision (`evaluate.py`), and its KFP component (`component.py`)."""
