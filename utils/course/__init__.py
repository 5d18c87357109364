"""The course machinery, apart from the models: what runs the course rather than what it teaches.

- ``checks``: ``check("N.k", answer)`` and ``hint("N.k")``, the exercise checker of every chapter
- ``notebooks``: releasing ``chapters/`` from ``solutions/``, executing and grading notebooks
- ``cli``: the ``attn`` command; ``doctor``: ``attn doctor``
- ``notebook_setup``: ``utils.setup_notebook``, the first call of every notebook
"""
