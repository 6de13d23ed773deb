"""Files written atomically (bytes, text, JSON, .npz, PNG) and PNG encoding: for every package
that writes a file a later run or a person reads."""
from fileio.atomic import (current_umask, write_bytes_atomic, write_json_atomic, write_npz_atomic,
                           write_text_atomic)
from fileio.png import png_bytes, write_png

__all__ = ["current_umask", "png_bytes", "write_bytes_atomic", "write_json_atomic",
           "write_npz_atomic", "write_png", "write_text_atomic"]
