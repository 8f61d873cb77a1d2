"""Fine-tuning configuration: the paper's defaults, a YAML file, and ``key=value`` overrides.

Precedence, lowest first: the defaults in :class:`Config` (``configs/default.yaml`` spells them
out and says which are the paper's), a YAML file or preset name (``--config tiny``), then dotted ``key=value`` overrides whose values
are parsed as YAML (``training.learning_rate=5e-4``, ``data.tune_genes=[A,B]``,
``model.pretrained=null``). Unknown keys raise :class:`InputError` naming the closest match.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from core.errors import InputError

#: Enformer human-head tracks the paper reads for the plain-Enformer baseline: 'CAGE:blood,
#: adult, pool1' (the default of ``evaluate`` and ``ism``) and 'CAGE:brain, adult'
ENFORMER_BLOOD_TRACK = 4950
ENFORMER_BRAIN_TRACK = 4980

#: the lucidrains port of the official Enformer weights (paper, Methods)
ENFORMER_HUB_ID = "EleutherAI/enformer-official-rough"


@dataclass(frozen=True)
class ModelConfig:
    """Which network to fine-tune.

    ``pretrained`` is a Hugging Face hub id or a local directory of Enformer weights; ``None``
    means random initial weights built from ``hparams`` (enformer-pytorch ``Enformer``
    hyperparameters, e.g. ``dim``, ``depth``, ``heads``). ``freeze_trunk`` trains only the
    new output head (the paper's frozen-Enformer variant). ``train_batchnorm``: the paper keeps
    Enformer's BatchNorms frozen (right for pre-trained weights); random initial weights need
    them trained (true in configs/tiny.yaml).
    """

    pretrained: str | None = ENFORMER_HUB_ID
    hparams: dict = field(default_factory=dict)
    freeze_trunk: bool = False
    train_batchnorm: bool = False


@dataclass(frozen=True)
class DataConfig:
    """What the model sees.

    ``seq_len`` center-crops the dataset's windows around the TSS (``None``: the dataset's own
    length, 49,152 bp in the paper; 196,608 bp needs a dataset prepared that wide).
    ``train_fraction`` is donor downsampling (nested 25/50/75/100 %). ``reference_genome``
    trains on the reference sequence with the mean expression of the train people as target
    (MSE only). ``tune_genes`` are held-out genes monitored by PCC on the tune people.
    ``haplotypes`` (issue #24): ``true`` runs the model on each person's two haplotype windows
    and predicts their mean (a dataset from ``variformer prep --haplotypes``), ``false`` on the
    mean one-hot, ``auto`` as the dataset was prepared; a run records the resolved value
    (:func:`resolve_haplotypes`, :func:`recorded_haplotypes`).
    """

    batch_size: int = 32
    seq_len: int | None = None
    train_fraction: float = 1.0
    reference_genome: bool = False
    tune_genes: list = field(default_factory=list)
    eval_batch_size: int | None = None
    num_workers: int = 0
    haplotypes: bool | str = "auto"


@dataclass(frozen=True)
class TrainingConfig:
    """How the model learns (names follow the paper and Lightning).

    Effective batch = ``data.batch_size * accumulate_grad_batches`` (32 x 4 = 128).
    ``alpha`` weighs MSE against the pairwise-difference term (1 = MSE only).
    ``monitor``: ``auto`` = ``tune_r2_mean`` (mean R2 over train genes on tune people),
    or ``tune_loss`` in reference-genome mode; ``heldout_pcc_mean`` monitors the held-out
    ``data.tune_genes`` instead. ``precision``: ``auto`` = bf16-mixed on CUDA, 32 on CPU.
    The paper states the learning rate (5e-6), alpha (one half each), accumulation (4), the
    gradient clip (global norm 0.05), bf16-mixed precision, early stopping on ``tune_r2_mean``
    with patience 20; it names no optimizer, weight decay or epoch cap, so AdamW,
    ``weight_decay`` (torch's AdamW default, 0.01), ``max_epochs`` (150), ``min_delta`` (0)
    and ``seed`` are ours (``configs/default.yaml`` marks each value [paper] or [ours]).
    ``limit_train_batches`` / ``limit_val_batches`` (null = all) exist for quick checks.
    """

    learning_rate: float = 5e-6
    weight_decay: float = 0.01
    alpha: float = 0.5
    accumulate_grad_batches: int = 4
    gradient_clip_val: float = 0.05
    precision: str = "auto"
    max_epochs: int = 150
    early_stopping: bool = True
    patience: int = 20
    min_delta: float = 0.0
    monitor: str = "auto"
    check_val_every_n_epoch: int = 1
    seed: int = 0
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None


@dataclass(frozen=True)
class Config:
    """The whole fine-tuning configuration (see :func:`load_config`)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (YAML/JSON-ready)."""
        return dataclasses.asdict(self)


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "training": TrainingConfig}
_MONITORS = ("auto", "tune_r2_mean", "tune_pcc_mean", "tune_loss", "heldout_pcc_mean")
_PRECISIONS = ("auto", "32", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64")


def preset_dirs() -> list[Path]:
    """Where presets live: the source tree's ``configs/`` or the copy installed with the package."""
    here = Path(__file__).resolve().parent
    return [d for d in (here.parent / "configs", here / "configs") if d.is_dir()]


def resolve_config_path(name_or_path: str | Path) -> Path:
    """An existing YAML file, or the preset of that name (``tiny`` -> ``configs/tiny.yaml``).

    Raises
    ------
    InputError
        Neither a file nor a preset (the message lists the presets).
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = str(name_or_path)
    if "/" not in name and os.sep not in name:
        stem = name.removesuffix(".yaml")
        for base in preset_dirs():
            if (base / f"{stem}.yaml").is_file():
                return base / f"{stem}.yaml"
    presets = sorted({p.stem for base in preset_dirs() for p in base.glob("*.yaml")})
    raise InputError(
        f"config file {name} does not exist and is not a preset ({', '.join(presets) or 'none found'}); "
        "pass an existing YAML file or a preset name to --config"
    )


def load_config(path: str | Path | None = None, *, overrides: Sequence[str] = ()) -> Config:
    """Build a :class:`Config` from the defaults, an optional YAML file and overrides.

    Parameters
    ----------
    path : str or Path, optional
        YAML file with any of the sections ``model``, ``data``, ``training``, or a preset name
        (``tiny``, ``default``, ``model_full``; see :func:`resolve_config_path`).
    overrides : sequence of str
        ``section.key=value`` items, values parsed as YAML (``1e-3``, ``true``, ``null``,
        ``[A, B]``); ``model.hparams.<name>=value`` sets one Enformer hyperparameter.

    Returns
    -------
    Config

    Raises
    ------
    InputError
        On a missing or malformed file, an unknown key, or a value of the wrong type.
    """
    merged = Config().to_dict()
    if path is not None:
        path = resolve_config_path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise InputError(
                f"config file {path} is not valid YAML: {str(err).splitlines()[0]}"
            ) from None
        if not isinstance(loaded, Mapping):
            raise InputError(
                f"config file {path} must be a mapping with sections {', '.join(_SECTIONS)}"
            )
        _merge(merged, loaded, where=str(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"override {item!r} is not key=value (e.g. training.learning_rate=1e-4)"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise InputError(f"override {item!r}: value is not valid YAML") from None
        nested: Any = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        _merge(merged, nested, where=f"override {item!r}")
    return _build(merged)


def _merge(base: dict, update: Mapping, *, where: str, prefix: str = "") -> None:
    """Merge ``update`` into ``base`` in place, refusing keys ``base`` does not have."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            close = difflib.get_close_matches(str(key), list(base), n=1)
            hint = (
                f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {', '.join(base)}"
            )
            raise InputError(f"{where}: unknown config key '{dotted}'{hint}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise InputError(f"{where}: '{dotted}' must be a mapping of keys, got {value!r}")
            if dotted == "model.hparams":
                base[key].update(value)  # free-form Enformer hyperparameters
            else:
                _merge(base[key], value, where=where, prefix=f"{dotted}.")
        else:
            base[key] = value


def _build(merged: dict) -> Config:
    sections = {}
    for name, cls in _SECTIONS.items():
        hints = get_type_hints(cls)
        values = {}
        for key, value in merged[name].items():
            values[key] = _check_type(f"{name}.{key}", value, hints[key])
        sections[name] = cls(**values)
    config = Config(**sections)
    _validate(config)
    return config


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Coerce/validate one value against its annotation (int -> float allowed; bool is not int)."""
    options = getattr(hint, "__args__", None) or (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str):
            # YAML 1.1 reads "5e-6" (no dot) as a string; accept it as the number it means
            try:
                return float(value)
            except ValueError:
                pass
        if option is str and isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        if option in (list, dict) and isinstance(value, option):
            return value
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise InputError(f"config '{key}' must be {names}, got {value!r}")


def _validate(config: Config) -> None:
    t, d = config.training, config.data
    if t.monitor not in _MONITORS:
        raise InputError(
            f"training.monitor must be one of {', '.join(_MONITORS)}, got {t.monitor!r}"
        )
    if t.precision not in _PRECISIONS:
        raise InputError(
            f"training.precision must be one of {', '.join(_PRECISIONS)}, got {t.precision!r}"
        )
    # the optimizer and Lightning refuse these only once training starts, with a traceback;
    # a learning rate of 0 stays allowed (a frozen model: the tests' fixed-weights runs)
    for key in ("learning_rate", "weight_decay", "gradient_clip_val"):
        value = getattr(t, key)
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"training.{key} must be a number >= 0, got {value}")
    if not 0.0 <= t.alpha <= 1.0:
        raise InputError(f"training.alpha must be in [0, 1], got {t.alpha}")
    if not 0.0 < d.train_fraction <= 1.0:
        raise InputError(f"data.train_fraction must be in (0, 1], got {d.train_fraction}")
    for key in ("batch_size", "seq_len", "eval_batch_size"):
        value = getattr(d, key)
        if value is not None and value < 1:
            raise InputError(f"data.{key} must be >= 1, got {value}")
    for key in ("accumulate_grad_batches", "max_epochs", "check_val_every_n_epoch"):
        if getattr(t, key) < 1:
            raise InputError(f"training.{key} must be >= 1, got {getattr(t, key)}")
    if t.monitor == "heldout_pcc_mean" and not d.tune_genes:
        raise InputError(
            "training.monitor=heldout_pcc_mean needs held-out genes in data.tune_genes"
        )
    if not all(isinstance(g, str) for g in d.tune_genes):
        raise InputError("data.tune_genes must be a list of gene names")
    if d.haplotypes not in (True, False, "auto"):
        raise InputError(f"data.haplotypes must be auto, true or false, got {d.haplotypes!r}")


def resolve_haplotypes(setting: bool | str, ds: Any) -> bool:
    """``data.haplotypes`` for the dataset ``ds``: ``auto`` is the dataset's mode.

    Parameters
    ----------
    setting : {"auto", True, False}
    ds : gene dataset
        ``ds.haplotype_mode`` (absent: an SNV dataset) says how it was prepared.

    Returns
    -------
    bool
        True: the model reads each person's two haplotypes (their predictions averaged).

    Raises
    ------
    InputError
        ``True`` on a dataset prepared without ``--haplotypes``.
    """
    mode = bool(getattr(ds, "haplotype_mode", False))
    if setting == "auto":
        return mode
    if setting is True and not mode:
        where = getattr(ds, "path", type(ds).__name__)
        raise InputError(
            f"data.haplotypes=true needs a dataset prepared with `variformer prep --haplotypes`; "
            f"{where} holds averaged SNV sequences (use data.haplotypes=auto or false)"
        )
    return bool(setting)


def recorded_haplotypes(run: Any) -> bool:
    """Whether a finished fine-tuning run (:func:`core.runs.read_run`) was trained in
    haplotype mode: its ``summary.json`` ``haplotypes``, else its ``config.yaml``'s resolved
    ``data.haplotypes``; runs that record neither (older versions) are SNV mode."""
    recorded = (run.summary or {}).get("haplotypes")
    if isinstance(recorded, bool):
        return recorded
    data = (run.config or {}).get("data") or (run.summary.get("config") or {}).get("data") or {}
    return data.get("haplotypes") is True
