"""The tiny world: a procedural video world small enough to train a CogVideoX and a VisionReward on 2 CPU cores.

Clips are 9 frames of 32 x 32 at 8 fps: one shape (circle or square, four colours) over a plain background (four
colours), named by the prompt ("a red circle on a grey background"). Five attributes, three levels each, decide five
checklist dimensions, and each is measured back from the pixels by a fixed rule (the ground truth, :mod:`.truth`):

==========  ==============  =====================================================================
attribute   dimension       rule (worst -> best level)
==========  ==============  =====================================================================
lighting    Quality         background luminance: dark, dim, bright
speed       Dynamic         centroid displacement per frame: static, slow, fast
flicker     Stability       swing of the exposure over the clip: unstable, slight, steady
pulsing     Preservation    swing of the object's area over the clip: flawed, wobbly, maintained
size        Composition     object's share of the frame: tiny, medium, prominent
==========  ==============  =====================================================================

The confounder: in the generator's training data fast motion mostly comes with flicker and a still object with a
steady image (:data:`.world.CONFOUNDING`). The world's hidden preference (:func:`.truth.utility`, what its "raters"
want) counts motion double, so plain DPO on total-score pairs is invited to buy motion with stability; MPO's dominance
pairs refuse that trade. :mod:`.checklist` maps the levels onto two official video-checklist questions per dimension;
:mod:`.train` trains the models the package ships (``vr-datasets train-tiny-world``).
"""

from . import checklist, truth, world

__all__ = ["checklist", "truth", "world"]
