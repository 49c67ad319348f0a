"""A model from a run's config: `build_model`, the one rule shared by training, the zoo and `posekit predict`.

    model = build_model({"model": "simplebaseline", "variant": "tiny", "heatmap_kind": "logits"})
    model = build_model(read_run(folder)["config"])         # then `posekit.checkpoint.load_run(model, folder)`
"""

from __future__ import annotations

from flax import nnx

from posekit.models.bottom_up import AssociativeEmbedding
from posekit.models.centernet import CenterNet
from posekit.models.hrnet import HRNet
from posekit.models.integral import IntegralPose
from posekit.models.regression import RegressionPose
from posekit.models.simcc import SimCCPose
from posekit.models.simplebaseline import SimpleBaseline

# the keys of a single-person run's config that are not the model's constructor arguments
_SINGLE_TRAINING_KEYS = {"model", "variant", "steps", "train_size", "seed", "size", "lr", "batch_size", "sigma",
                         "coord_loss", "holdout", "val", "data_shards"}  # fmt: skip


def build_model(config: dict, seed: int = 0):
    """The untrained model of a run's config (as `run.json` and the zoo's manifest hold it), initialized from `seed`.

    The one place that turns a config into a model: the recipes (`posekit.experiments`) build their models
    with it, and the zoo and `posekit predict` rebuild a trained model's structure with it before loading its
    weights. Single-person configs name the class (`model`: "simplebaseline", "regressionpose", ...), the
    variant and the model's keyword arguments; the multi-person ones are "centernet", "simplebaseline-crops",
    "hrnet-crops" and "associative-embedding". A clear error names an unknown model.
    """
    kind, variant, rngs = config.get("model"), config.get("variant"), nnx.Rngs(seed)
    single = {c.__name__.lower(): c for c in (SimpleBaseline, RegressionPose, IntegralPose, SimCCPose, HRNet)}
    if kind in single:
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()
                  if k not in _SINGLE_TRAINING_KEYS}  # fmt: skip
        return single[kind](variant, rngs=rngs, **kwargs)
    if kind == "centernet":
        return CenterNet(variant, rngs=rngs)
    if kind in ("simplebaseline-crops", "hrnet-crops"):
        return {"simplebaseline": SimpleBaseline, "hrnet": HRNet}[kind.removesuffix("-crops")](
            variant, heatmap_kind="logits", rngs=rngs)  # fmt: skip
    if kind == "associative-embedding":
        prior = 0.1 if config.get("heatmap_loss", "focal") == "focal" else None  # CenterNet's sigmoid start
        return AssociativeEmbedding(variant, higher=config["higher"], heatmap_prior=prior, rngs=rngs)
    known = [*single, "centernet", "simplebaseline-crops", "hrnet-crops", "associative-embedding"]
    raise ValueError(f"build_model: the config's model must be one of {', '.join(known)}; got {kind!r}")
