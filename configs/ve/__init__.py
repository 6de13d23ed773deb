"""Paper configs with the VE SDE; load one with configs.load_config("configs/ve/FILE.py")."""
