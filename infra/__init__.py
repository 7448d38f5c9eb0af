"""CDK infrastructure of Custom Labels Autopilot."""

import os

# jsii prints an end-of-life banner for the machine's Node 20; it is harmless for synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
