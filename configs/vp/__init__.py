"""Paper configs with the VP SDE; load one with configs.load_config("configs/vp/FILE.py")."""
