"""State machine definitions as pure functions returning Amazon States Language (a dict):
model control (model_control.py) and training (training.py), built from the helpers in asl.py.
Their JSONPaths come from the contract models in lambdas (field_path), so a definition that
names a field its contract lacks fails at synth."""
