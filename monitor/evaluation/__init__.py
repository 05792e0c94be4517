"""Evaluation: labelled items, metrics, the evaluation report beside baselines, and calibration."""
