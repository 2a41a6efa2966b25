"""`make demo`: the main job end to end on an embedded workspace.

Filled in by the simulator: simulate a theft, ingest it, trace it, print the breakdown.
"""

from __future__ import annotations

import argparse

from heisttrace.ledger import open_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="demo-workspace")
    args = parser.parse_args()
    with open_workspace(args.workspace) as ws:
        print(f"workspace {ws.path}: {ws.count_flows()} flows")


if __name__ == "__main__":
    main()
