"""`python3 -m sglang.launch_server ...` -> `tierwise sim engine --engine sglang ...`."""

import sys

from engine_shim import flag, simulate

if __name__ == "__main__":
    args = sys.argv[1:]
    simulate("sglang", args, model=flag(args, "--model-path"), port="30000")
