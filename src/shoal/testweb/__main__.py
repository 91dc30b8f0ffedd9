"""``python -m shoal.testweb``: the same command as ``shoal testweb``."""

from shoal.testweb.cli import testweb

if __name__ == "__main__":
    testweb(prog_name="python -m shoal.testweb")
