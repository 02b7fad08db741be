"""`python -m mixdepth.train CONFIG.yaml [key=value ...] [--resume]`: the `mixdepth train`
command as a module, so that `torchrun ... -m mixdepth.train CONFIG.yaml` launches it."""

import sys

from mixdepth.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "train", *sys.argv[1:]]
    main()
