"""rzero_lib: the library behind the rzero notebooks (R-Zero, arXiv 2508.05004).

Algorithm modules (`prompts`, `answers`, `voting`, `rewards`, `arithmetic`,
`oracle`, `config`) import neither torch nor transformers. Engine modules
(`models`, `generation`, `training`) build on them, never the other way round.
"""

__version__ = "0.1.0"
