"""``python -m shoal.testweb``: the same command as ``shoal testweb``."""

from shoal.testweb.cli import main

if __name__ == "__main__":
    main()
