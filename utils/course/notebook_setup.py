"""One call at the top of every notebook: seeds, profile, plotting and printing defaults."""

from __future__ import annotations

import torch

from utils.runtime import choose_device, get_profile, seed_everything


def setup_notebook(seed: int = 0, profile: str | None = None) -> torch.device:
    """Seed everything, read the profile, set plotting defaults; return the device to use.

    Figures are PNG (nbval compares SVG as text, and SVG ids change every run),
    tensors print with 4 decimals, and the chosen profile is printed once so a
    learner knows how long the training cells will take.
    """
    chosen = get_profile(profile)
    if chosen == "smoke":
        # smoke runs are tiny: one thread is as fast, reproducible, and does not oversubscribe
        # the cores when the test suite runs notebooks in parallel
        torch.set_num_threads(1)
    seed_everything(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
    from utils.plot import use_png

    use_png()
    print(f"Course profile: {chosen} (set COURSE_PROFILE=smoke, cpu or gpu to change it)")
    return choose_device()
