"""gear_sonic: SONIC-style universal humanoid motion tracking on mjlab."""

import os

# mjlab logs one line per cached warp kernel module at start-up, which drowns the useful output;
# MJLAB_WARP_QUIET=0 brings it back (it must be set before mjlab is imported).
os.environ.setdefault("MJLAB_WARP_QUIET", "1")
