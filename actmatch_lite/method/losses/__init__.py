"""The terms of the activation-matching objective, one module per family; each returns a per-image ``(B,)`` vector."""
from actmatch_lite.method.losses.abductive import background_composites, complement, necessity_loss, robustness_loss
from actmatch_lite.method.losses.activation import (DISTANCES, activation_matching_loss, cosine_distance,
                                                    default_distances, mse_distance, std_mse_distance)
from actmatch_lite.method.losses.fidelity import cross_entropy_loss, kl_loss
from actmatch_lite.method.losses.priors import area_excess_loss, area_loss, binarisation_loss, tv_loss

__all__ = [
    "DISTANCES", "activation_matching_loss", "area_excess_loss", "area_loss", "background_composites",
    "binarisation_loss", "complement", "cosine_distance", "cross_entropy_loss", "default_distances", "kl_loss",
    "mse_distance", "necessity_loss", "robustness_loss", "std_mse_distance", "tv_loss",
]
