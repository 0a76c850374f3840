"""``python -m engine`` is ``ncrisk``."""

from engine.cli import main

if __name__ == "__main__":
    main()
