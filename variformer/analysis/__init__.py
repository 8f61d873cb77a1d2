"""Analyses of trained models and datasets: ISM, HSVs, drivers, motifs, enrichment, auROC."""
