"""Every pytest run, whatever it collects, computes on the pinned CPU code paths.

nbval compares each notebook cell with the output stored by ``attn release``; both run under
``PINNED_CPU_ENV`` (why: utils/course/notebooks/execute.py). Set here, before torch is imported and
before any notebook kernel starts, so the kernels inherit it.
"""

import os

from utils.course.notebooks.execute import PINNED_CPU_ENV

os.environ.update(PINNED_CPU_ENV)
