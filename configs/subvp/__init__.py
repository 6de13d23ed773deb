"""Paper configs with the sub-VP SDE; load one with configs.load_config("configs/subvp/FILE.py")."""
