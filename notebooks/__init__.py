"""The stage notebooks (py:percent files), installed as the package data `rzero_lib.notebooks`.

Never imported for code: the pipeline finds this folder with importlib.resources (`rzero_lib.pipeline.notebooks`)
and runs each notebook with papermill. This file only makes the folder a package, which importlib.resources
needs to find it in an editable install.
"""
