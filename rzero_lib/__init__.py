"""rzero_lib: the library behind the rzero notebooks (R-Zero, arXiv 2508.05004).

Layers, bottom to top; each imports only from the layers below it (checked by
import-linter, see docs/design.md): the algorithm (the top-level modules, no
torch) ← `engine` ← `training` | `evaluation` ← `pipeline` ← `report` ←
`experiments`.
"""

__version__ = "0.1.0"
