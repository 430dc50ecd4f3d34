"""``python -m aigc_app.cli``."""

from aigc_app.cli import main

if __name__ == "__main__":
    main()
