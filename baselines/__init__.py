"""Linear baselines (elastic net, lasso, ridge) fit on the same datasets and folds as Variformer.

Depends on ``data_prep`` only.
"""

from baselines.dosage_columns import variant_keys
from baselines.elastic_net import LinearFit, fit_linear, fit_linear_many

__all__ = ["LinearFit", "fit_linear", "fit_linear_many", "variant_keys"]
