"""Figures and the HTML report, built from result tables only (never a model)."""
