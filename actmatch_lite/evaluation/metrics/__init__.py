"""The evaluation protocol's metrics M1–M14 (docs/EVALUATION.md), one module per family.

Convention: every metric takes a batch and returns **one value per image**, a float tensor ``(B,)``
(0/1 for yes/no metrics such as sufficiency); the table entry is ``summarise(values)`` (mean ± std over
the finite values; NaN marks an undefined value, e.g. 1-minimality of an insufficient mask). Exceptions:
``activation_distance`` / ``activation_fidelity`` return ``{layer: (B,)}``, the ``*_curve`` functions return
``(fractions, p)``, and ``time_per_image`` returns seconds (a float).

Metrics that run the classifier read its probabilities, freeze it with ``actmatch_lite.method.frozen.frozen`` and
run without gradients, so it comes back unchanged. ``DIRECTION[name]`` says whether higher or lower is better.
"""
from actmatch_lite.evaluation.metrics import (activations, agreement, cost, curves, fidelity, localisation, mask,
                                              minimality)
from actmatch_lite.evaluation.metrics._common import THRESHOLD, Summary, summarise
from actmatch_lite.evaluation.metrics.activations import activation_distance, activation_fidelity
from actmatch_lite.evaluation.metrics.agreement import (sanity_iou, sanity_spearman, seed_stability, shift_images,
                                                        shift_iou, shift_stability)
from actmatch_lite.evaluation.metrics.cost import time_per_image
from actmatch_lite.evaluation.metrics.curves import (deletion_auc, deletion_curve, insertion_auc, insertion_curve,
                                                     pixel_rank)
from actmatch_lite.evaluation.metrics.fidelity import (confidence_change, necessity, necessity_drop, robustness,
                                                       sufficiency)
from actmatch_lite.evaluation.metrics.localisation import (instance_purity, instance_recall, iou, pointing_game,
                                                           precision)
from actmatch_lite.evaluation.metrics.mask import area, components, crispness, total_variation
from actmatch_lite.evaluation.metrics.minimality import one_minimality

DIRECTION: dict[str, str] = {}
for _module in (fidelity, mask, activations, curves, localisation, minimality, agreement, cost):
    DIRECTION.update(_module.DIRECTION)
del _module
ARROWS = {"higher": "↑", "lower": "↓"}


def arrow(name: str) -> str:
    """``"↑"`` or ``"↓"`` for a metric name in ``DIRECTION``."""
    return ARROWS[DIRECTION[name]]


__all__ = ["DIRECTION", "ARROWS", "arrow", "THRESHOLD", "Summary", "summarise",
           "sufficiency", "confidence_change", "robustness", "necessity", "necessity_drop",
           "area", "crispness", "total_variation", "components",
           "activation_distance", "activation_fidelity",
           "deletion_curve", "insertion_curve", "deletion_auc", "insertion_auc", "pixel_rank",
           "pointing_game", "iou", "precision", "instance_recall", "instance_purity",
           "one_minimality", "sanity_iou", "sanity_spearman", "seed_stability", "shift_images", "shift_iou",
           "shift_stability", "time_per_image"]
