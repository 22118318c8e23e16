"""One Solver GRPO phase with `report_to` set, in a fresh interpreter as a stage kernel is (trackio reads its
folder when first imported): `python -m tests.training.tracking_run MODEL STAGE_DIR REPORT_TO`.

Every connection to a non-loopback address is refused and recorded; prints a JSON line with the
parameter change, the refused connections and the warnings.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import warnings
from pathlib import Path

REFUSED: list[str] = []
_connect = socket.socket.connect


def _local_only(sock, address):
    host = address[0] if isinstance(address, tuple) else None
    try:
        loopback = host is None or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        REFUSED.append(str(address))
        raise OSError(f"no outbound connection in this test ({address})")
    return _connect(sock, address)


def main(model: str, stage: str, report_to: str) -> None:
    socket.socket.connect = _local_only
    from rzero_lib.config import SolverTrainingParams
    from rzero_lib.training.roles import train_solver
    from tests.support import SOLVER_PROMPT

    params = SolverTrainingParams(steps=2, batch_size=4, group_size=4, max_new_tokens=16, learning_rate=1e-3,
                                  beta=0.01, temperature=1.0, top_p=1.0, report_to=report_to)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_solver(model, ["What is 1+1?", "What is 2+2?", "What is 1+2?", "What is 3+3?"],
                              ["2", "4", "3", "6"], params=params, solver_prompt=SOLVER_PROMPT,
                              output_dir=Path(stage), seed=0, disable_tqdm=True)
    print(json.dumps({"parameter_change": result.parameter_change, "model_dir": str(result.model_dir),
                      "refused": REFUSED, "warnings": [str(w.message) for w in caught]}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
